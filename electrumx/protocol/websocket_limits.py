"""MAX_RECV for WebSocket clients, applied while the frames arrive.

Twisted's WebSocket server (`twisted.web.websocket`, on wsproto) hands a
session whole messages only.  Beneath it, wsproto passes each data frame's
payload up piece by piece as it arrives, and Twisted appends every piece to
the message so far, a `str` extended with `+=`.  So a check on the whole
message, where the session had one, came after the memory was spent: a
40 MB frame took 78 MB of the server's resident memory and 8 s before
"request too long"; a 300 MB frame was still unanswered after 300 s, at
397 MB; a header declaring 2^62 bytes was never refused at all.  Extending
a `str` copies it, so the time was quadratic too: 10 MB in 20,000 fragments
(MAX_RECV raised to 10 MB) cost 7 to 8 s of CPU.

Twisted has no hook for a limit: wsproto's frame parser and the message
buffers live in the private `_WebSocketWireProtocol`, which
`WebSocketResource` builds and splices into the HTTP channel itself.  So:

- `MessageSizeGuard` sits under the HTTP channel (`LimitedWebSocketSite`
  wraps the Site, the way Twisted's own `policies` wrappers do).  It passes
  the HTTP upgrade request through untouched (but closes a connection that
  sends more than an upgrade request can hold); from the upgrade on, it reads
  each frame header (RFC 6455 §5.2) before wsproto sees the frame, and adds
  up the payload lengths of the message the frame belongs to.  The header of
  a frame that takes its message past the limit is not passed on: the
  session answers "request too long" and the connection is closed; of that
  payload the server has read at most the rest of the one read (64 KB) that
  brought the header.  The guard only counts: wsproto still parses and
  validates everything (masking, opcodes, control frames, UTF-8), as before.
- The wire protocol's two message buffers are replaced by `MessageBuffer`,
  which appends in linear time (the guard bounds what it can hold).

Both are applied by `limit_messages`, which the session calls when the
upgrade hands it its WebSocket transport.  The other ways were worse: a
`WebSocketResource` subclass building its own wire protocol would copy
`render_GET` and lean on the same private names, and reimplementing the
frame protocol would throw away wsproto's tested validation; counting
headers is about forty lines.
"""

import io

from twisted.protocols.policies import WrappingFactory

from electrumx.protocol.admission import HandshakeRelay

REFUSAL_GRACE_SECS = 10.0
"""How long a refused connection has to close (a WebSocket client reads the error and
the close frame) before it is aborted: one that never reads would hold it open."""

UPGRADE_REQUEST_MAX_BYTES = 32_768
"""The most a client may send before its connection becomes a WebSocket: twice the
16 KB Twisted allows a request's headers.  An upgrade request has no body, and
Twisted would take a body of any size (into a temporary file) before answering."""

_EXTENDED_LENGTH_BYTES = {126: 2, 127: 8}
"""Bytes after the second header byte that carry the payload length, by its 7-bit code."""

_MASK_BYTES = 4
_CONTINUATION = 0x0
_CONTROL_BIT = 0x8
"""Opcodes with this bit (close, ping, pong) are control frames, not part of a message."""


def header_length(second_byte: int) -> int:
    """A frame header's length in bytes (2 to 14), from its second byte."""
    return (2 + _EXTENDED_LENGTH_BYTES.get(second_byte & 0x7F, 0)
            + (_MASK_BYTES if second_byte & 0x80 else 0))


def payload_length(header: bytes) -> int:
    """The payload length a whole frame header declares."""
    code = header[1] & 0x7F
    if code in _EXTENDED_LENGTH_BYTES:
        return int.from_bytes(header[2:2 + _EXTENDED_LENGTH_BYTES[code]], "big")
    return code


class MessageMeter:
    """Adds up each message's payload from the frame headers, as bytes stream in.

    A message is a text or binary frame and the continuation frames after
    it; control frames may come between them and do not count.  A sequence
    that breaks these rules is wsproto's to refuse, so the count simply
    restarts at every text or binary frame.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.refused = False
        self._header = bytearray()
        self._payload_left = 0
        self._message_bytes = 0

    def feed(self, data: bytes) -> int:
        """How many leading bytes of `data` may go on to the frame parser: all of them,
        unless a frame header in them takes its message past the limit; then the bytes
        before that header, `refused` is set, and the meter is to be fed no more."""
        pos, end = 0, len(data)
        header_start = 0        # where the header being read began (0: in an earlier chunk)
        while pos < end:
            if self._payload_left:
                step = min(self._payload_left, end - pos)
                self._payload_left -= step
                pos += step
                continue
            if not self._header:
                header_start = pos
            piece = data[pos:pos + self._header_missing()]
            self._header += piece
            pos += len(piece)
            if not self._header_missing():
                if not self._frame_fits(bytes(self._header)):
                    self.refused = True
                    return header_start
                self._header.clear()
        return end

    def _header_missing(self) -> int:
        if len(self._header) < 2:
            return 2 - len(self._header)
        return header_length(self._header[1]) - len(self._header)

    def _frame_fits(self, header: bytes) -> bool:
        length = payload_length(header)
        opcode = header[0] & 0x0F
        if not opcode & _CONTROL_BIT:
            if opcode != _CONTINUATION:
                self._message_bytes = 0
            self._message_bytes += length
            if self._message_bytes > self.limit:
                return False
        self._payload_left = length
        return True


class MessageSizeGuard(HandshakeRelay):
    """The byte stream under one HTTP connection that may become a WebSocket.

    Until `read_frames` is called, bytes pass through to the HTTP channel, up
    to UPGRADE_REQUEST_MAX_BYTES; after it, each message is metered and one
    over the limit refused.  Past either bound the connection is closed, its
    further bytes dropped unread, and aborted if it lingers.

    `read_frames` is called during the upgrade, while this guard is still
    passing on the read that carried the request; bytes after the request in
    that read stay with the HTTP channel and never reach the WebSocket (that
    is Twisted's behaviour), so every byte wsproto parses was metered first.
    """

    def __init__(self, factory, wrapped_protocol):
        super().__init__(factory, wrapped_protocol)
        self._receive = self._upgrade_request
        self._request_bytes = 0
        self._meter = None
        self._refuse = None
        self._abort_later = None

    def read_frames(self, limit: int, refuse):
        """The connection is a WebSocket from now on: a message over `limit` bytes is
        refused, by calling `refuse()` to answer the client, then closing."""
        self._meter = MessageMeter(limit)
        self._refuse = refuse
        self._receive = self._frames

    def dataReceived(self, data: bytes):
        self._receive(data)

    def _upgrade_request(self, data: bytes):
        self._request_bytes += len(data)
        if self._request_bytes > UPGRADE_REQUEST_MAX_BYTES:
            self._close()
            return
        self.wrappedProtocol.dataReceived(data)

    def _frames(self, data: bytes):
        passed = self._meter.feed(data)
        if passed:
            self.wrappedProtocol.dataReceived(data if passed == len(data) else data[:passed])
        if self._meter.refused:
            if not self.disconnecting:      # the bytes before the header may have closed it
                self._refuse()
            self._close()

    def _discard(self, data: bytes):
        pass

    def _close(self):
        self._receive = self._discard
        self._abort_later = self.factory.clock.callLater(REFUSAL_GRACE_SECS,
                                                         self.abortConnection)
        if not self.disconnecting:
            self.loseConnection()

    def connectionLost(self, reason):
        if self._abort_later is not None and self._abort_later.active():
            self._abort_later.cancel()
        super().connectionLost(reason)


class LimitedWebSocketSite(WrappingFactory):
    """An HTTP Site serving WebSockets, each connection under a `MessageSizeGuard`."""

    protocol = MessageSizeGuard
    noisy = False

    def __init__(self, site, clock):
        super().__init__(site)
        self.clock = clock


class MessageBuffer:
    """A message being reassembled from its frames, appended in linear time.

    Takes the place of Twisted's buffer (`add` a piece, `done` takes the
    message), which extends an immutable `str` or `bytes` and so copies the
    whole message for every piece.  `stream_type` is `io.StringIO` for text
    messages, `io.BytesIO` for binary ones.
    """

    def __init__(self, stream_type):
        self._stream_type = stream_type
        self._stream = stream_type()

    def add(self, piece):
        self._stream.write(piece)

    def done(self):
        message = self._stream.getvalue()
        self._stream = self._stream_type()
        return message


_WIRE_BUFFERS = (("_textBuffer", io.StringIO), ("_bytesBuffer", io.BytesIO))
"""The message buffers of Twisted's (private) wire protocol, by attribute name."""


def limit_messages(wire, limit: int, refuse):
    """Bound one upgraded connection's messages to `limit` bytes.

    `wire` is the WebSocket transport a session gets in `negotiationStarted`
    (Twisted's wire protocol); the stream under it must be a
    `MessageSizeGuard`, which `LimitedWebSocketSite` provides.  `refuse()` is
    called once, when a message goes over the limit.
    """
    guard = wire.transport
    if not isinstance(guard, MessageSizeGuard):
        raise TypeError(f"WebSockets must be served through LimitedWebSocketSite, not "
                        f"over {type(guard).__name__}")
    guard.read_frames(limit, refuse)
    for name, stream_type in _WIRE_BUFFERS:
        if not hasattr(wire, name):
            raise RuntimeError(f"Twisted's WebSocket wire protocol has no {name} any more: "
                               f"check MessageBuffer against twisted.web._websocket_impl")
        setattr(wire, name, MessageBuffer(stream_type))
