"""One client connection over a byte stream (TCP or TLS): one JSON message per line.

It frames bytes into lines, refusing a line longer than MAX_RECV before
buffering it, and keeps a slow client from holding its slot: over TLS the
handshake must end within HANDSHAKE_TIMEOUT of the connection, and every
request line must arrive whole within PARTIAL_REQUEST_TIMEOUT of its first
byte.  Requests, costs and the session's life are `SessionBase`'s.
"""

from twisted.internet import protocol, tcp
from twisted.internet.interfaces import IHandshakeListener, ITransport
from twisted.protocols import policies
from twisted.protocols.tls import TLSMemoryBIOProtocol
from zope.interface import implementer

from electrumx.protocol.deadline import Deadline
from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.session import SessionBase, send_without_delay


@implementer(IHandshakeListener)
class ElectrumSession(SessionBase, protocol.Protocol):
    """A session over a stream transport (TCP or TLS): one JSON message per line.

    Two deadlines keep a slow client from holding its slot: over TLS the
    handshake must be done within HANDSHAKE_TIMEOUT of the connection, and
    every request line must arrive whole within PARTIAL_REQUEST_TIMEOUT of its
    first byte.
    """

    transport: ITransport
    """Set by Twisted before any method below runs (at `makeConnection`)."""

    def __init__(self, manager, tls=False):
        super().__init__(manager)
        self._buffer = bytearray()
        self._tls = tls
        self._tcp = None
        """The TCP connection under the admission wrapper, whose socket `_write` writes
        to directly; None over TLS."""
        settings, clock = manager.settings, manager.clock
        self._handshake = Deadline(clock, settings.handshake_timeout, self._handshake_too_slow)
        self._line = Deadline(clock, settings.partial_request_timeout, self._line_too_slow)

    @property
    def kind(self) -> str:
        """The transport, as the log names it."""
        return "TLS" if self._tls else "TCP"

    def connectionMade(self):
        peer = self.transport.getPeer()
        self.remote_address = getattr(peer, "host", "")
        send_without_delay(self.transport)
        if not self._tls:
            self._tcp = _tcp_connection_under(self.transport)
        self.transport.registerProducer(self, True)
        if self._tls:
            self._handshake.start()
        self.manager.session_opened(self)

    def handshakeCompleted(self):
        self._handshake.stop()

    def connectionLost(self, reason=None):
        self._handshake.stop()
        self._line.stop()
        self._connection_lost()

    def _pause_reading(self):
        self.transport.pauseProducing()

    def _resume_reading(self):
        self.transport.resumeProducing()
        if self._buffer:
            self._line.restart()        # the time we did not read was not the client's

    def _stop_producing_for_transport(self):
        self.transport.unregisterProducer()

    def _lose_connection(self):
        self.transport.loseConnection()

    def _abort_connection(self):
        self.transport.abortConnection()

    # ---- framing ---------------------------------------------------------

    def dataReceived(self, data: bytes):
        self._count_bytes(len(data))
        start = 0       # a position, not slicing: many pipelined lines cost one pass
        while start < len(data) and self.is_open:      # a closed session reads no more
            newline = data.find(b"\n", start)
            if newline < 0:
                self._buffer += data[start:]
                self._line.start()          # timed from the line's first byte
                if len(self._buffer) > self.max_recv:
                    self._line_too_long()
                return
            chunk, start = data[start:newline], newline + 1
            self._buffer += chunk
            if len(self._buffer) > self.max_recv:
                self._line_too_long()
                return
            line = bytes(self._buffer)
            self._buffer.clear()
            self._line.stop()
            if line.strip():
                self._mark_active()
                self.message_received(line)

    def _line_too_long(self):
        self._stop_reading_lines()
        self._refuse_too_long()

    def _line_too_slow(self):
        if self._reading_paused:
            # We are not reading (the client is not reading our replies, or its earlier
            # requests are still under way): the rest of the line may be waiting on our
            # side.  Resuming starts a new period.
            return
        self.stats.timed_out["partial_request"] += 1
        self._stop_reading_lines()
        self._refuse(RPCError(BAD_REQUEST, "request not received in full within "
                                           f"{self.manager.settings.partial_request_timeout}"
                                           " seconds"))

    def _stop_reading_lines(self):
        """Drop the partial line: the session is being refused (and, closed, it reads
        nothing more)."""
        self._buffer.clear()
        self._line.stop()

    def _handshake_too_slow(self):
        self.stats.timed_out["handshake"] += 1
        self.abort()

    def _write(self, data: bytes):
        """Send a message: straight to the socket when nothing is queued before it.

        Twisted's `write` queues and sends when the reactor next finds the socket
        writable: a reply then waits for the rest of the turn and costs two
        epoll_ctl calls.  Whatever the socket does not take at once (a full
        buffer, an error) goes to `write`, which keeps order, pauses this
        producer when its queue grows and reports a lost connection.
        """
        line = data + b"\n"
        connection = self._tcp
        if connection is not None and _nothing_queued(connection):
            try:
                sent = connection.socket.send(line)
            except OSError:
                sent = 0
            if sent == len(line):
                return
            line = line[sent:]
        self.transport.write(line)


def _tcp_connection_under(transport):
    """The plain TCP connection under `transport`'s wrappers (the listener's admission
    counting), or None: TLS or anything else in between."""
    while isinstance(transport, policies.ProtocolWrapper) and \
            not isinstance(transport, TLSMemoryBIOProtocol):
        transport = transport.transport
    return transport if isinstance(transport, tcp.Connection) else None


def _nothing_queued(transport) -> bool:
    """Whether a TCP transport is open for writing with nothing waiting to be sent
    (`twisted.internet.abstract.FileDescriptor`'s buffers)."""
    return (transport.connected and not transport.disconnecting
            and not transport._writeDisconnected and not transport._tempDataLen
            and transport.offset == len(transport.dataBuffer))


class ElectrumFactory(protocol.ServerFactory):
    """Makes stream sessions for the listeners of one kind: TCP, or TLS (`tls`)."""

    noisy = False

    def __init__(self, manager, tls=False):
        self.manager = manager
        self.tls = tls

    def buildProtocol(self, addr):
        if self.manager.refuses(getattr(addr, "host", "")):
            return None
        return ElectrumSession(self.manager, self.tls)
