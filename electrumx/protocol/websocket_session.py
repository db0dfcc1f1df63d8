"""One client connection over WebSocket: one JSON message per text frame.

The session's requests, costs and lifecycle are `SessionBase`'s; this module
only carries messages over Twisted's WebSocket transport, whose message size
is limited as frames arrive (`websocket_limits`).
"""

from wsproto.utilities import LocalProtocolError

from electrumx.protocol.session import SessionBase, send_without_delay
from electrumx.protocol.websocket_limits import limit_messages


class WebSocketSession(SessionBase):
    """A session over WebSocket: one JSON message per text frame, no newline."""

    NORMAL_CLOSURE, MESSAGE_TOO_BIG = 1000, 1009
    """The close frame's codes (RFC 6455, 7.4.1)."""

    def __init__(self, manager, remote_address):
        super().__init__(manager)
        self.remote_address = remote_address
        self.transport = None
        self._close_code = self.NORMAL_CLOSURE

    kind = "WebSocket"
    """The transport, as the log names it."""

    def negotiationStarted(self, transport):
        self.transport = transport
        limit_messages(transport, self.max_recv, self._refuse_too_long)

    def negotiationFinished(self):
        # The upgraded HTTP channel is still the stream's producer; the session takes
        # its place, or it would never hear that the client stopped reading (nor
        # could it let go of the stream when it closes).
        self._stream().unregisterProducer()
        self.transport.attachProducer(self)
        if self.manager.refuses(self.remote_address):
            self.close()
            return
        send_without_delay(self._stream())
        self.manager.session_opened(self)

    def textMessageReceived(self, message: str):
        self._receive(message.encode())

    def bytesMessageReceived(self, data: bytes):
        self._receive(data)

    def _refuse_too_long(self):
        self._close_code = self.MESSAGE_TOO_BIG
        super()._refuse_too_long()

    def _receive(self, data):
        self._count_received(len(data))     # never over max_recv: limit_messages sees to it
        self.message_received(data)

    def pongReceived(self, payload: bytes):
        pass

    def connectionLost(self, reason=None):
        self._connection_lost()

    def _write(self, data: bytes):
        self.transport.sendTextMessage(data.decode())

    # The WebSocket transport carries the messages; the stream below it is paused
    # and aborted directly (a WebSocket close handshake needs a reading client).
    def _stream(self):
        return self.transport.transport

    def _pause_reading(self):
        self._stream().pauseProducing()

    def _resume_reading(self):
        self._stream().resumeProducing()

    def _stop_producing_for_transport(self):
        self.transport.detachProducer()

    def _lose_connection(self):
        try:
            self.transport.loseConnection(self._close_code)     # a close frame first
        except LocalProtocolError:                  # the client's close frame came first
            self._stream().loseConnection()

    def _abort_connection(self):
        self._stream().abortConnection()


class WebSocketFactory:
    """Makes WebSocket sessions (Twisted's WebSocketServerFactory protocol)."""

    def __init__(self, manager):
        self.manager = manager

    def buildProtocol(self, request):
        return WebSocketSession(self.manager, request.getClientAddress().host)
