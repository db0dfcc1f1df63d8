"""One client connection: newline framing, request dispatch, replies and notifications.

The protocol frames bytes into lines (refusing a line longer than MAX_RECV
before buffering it), parses JSON-RPC, enforces that `server.version` comes
first, and runs each request through the session's cost meter and
concurrency limit.  The Electrum methods themselves live in
`electrumx.protocol.methods`; this module knows nothing of the chain.
"""

from twisted.internet import defer, protocol, task
from twisted.internet.interfaces import IHandshakeListener, IPushProducer
from zope.interface import implementer

from electrumx.logs import Logger
from electrumx.protocol import jsonrpc
from electrumx.protocol.costs import ERROR_COST, CostMeter
from electrumx.protocol.deadline import Deadline
from electrumx.protocol.errors import (BAD_REQUEST, EXCESSIVE_RESOURCE_USAGE, INTERNAL_ERROR,
                                       INVALID_PARAMS, METHOD_NOT_FOUND, PARSE_ERROR,
                                       RESPONSE_TOO_LARGE, SERVER_BUSY, ReplyAndDisconnect,
                                       RPCError)
from electrumx.protocol.websocket_limits import limit_messages


@implementer(IPushProducer)
class SessionBase:
    """What every session does, whatever carries its messages.

    Subclasses deliver whole messages to `message_received`, and implement
    `_write(data)` (send one encoded message), `_pause_reading()`,
    `_resume_reading()`, `_abort()` and `close()`.

    A session is its transport's push producer: when the client stops reading
    and the transport's buffer fills, the transport pauses the session.  Until
    it resumes, replies and notifications still queue, but only up to
    `manager.max_buffered` bytes; past that the client is disconnected, so a
    client that never reads cannot make the server's memory grow.
    """

    log = Logger()

    def __init__(self, manager):
        self.manager = manager
        settings = manager.settings
        self.max_recv = settings.max_recv
        self.max_send = settings.max_send
        self.session_id = manager.next_session_id()
        self.remote_address = ""
        self.is_tor = False
        self.client_name = ""
        self.protocol_version = None
        self.subscription_state = None
        self.group = None
        """The SessionGroup of the client's subnet, set by the manager (None: ungrouped)."""
        self.cost = CostMeter(manager.clock, soft=settings.cost_soft_limit,
                              hard=settings.cost_hard_limit,
                              bandwidth_unit=settings.bandwidth_unit_cost,
                              sleep_secs=settings.request_sleep / 1000,
                              initial_concurrent=settings.initial_concurrent)
        self.started = self.last_activity = manager.clock.seconds()
        self.stats = manager.stats
        self.requests = 0
        self.errors = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.log_requests = False
        """Log every request of this session (toggled by the admin `log` command)."""
        self._in_flight = 0
        self._waiting = []
        self._closing = False
        self._paused_writing = False
        self._written_while_paused = 0


    # ---- dispatch --------------------------------------------------------

    def message_received(self, line: bytes):
        try:
            requests, is_batch = jsonrpc.parse_message(line)
        except RPCError as error:
            self._count_error(error)
            self.cost.bump(ERROR_COST * (10 if error.code == PARSE_ERROR else 1))
            self._send(jsonrpc.error_reply(None, error))
            return
        if is_batch:
            d = defer.gatherResults([self._handle(r) for r in requests], consumeErrors=True)
            d.addCallback(lambda replies: [r for r in replies if r is not None])
            d.addCallback(lambda replies: replies and self._send(replies))
        else:
            d = self._handle(requests[0])
            d.addCallback(lambda reply: reply is not None and self._send(reply))
        d.addErrback(lambda f: self.log.failure("session {id} dispatch", f, id=self.session_id))

    def _handle(self, request):
        """A Deferred of the reply dict (None for a notification)."""
        return defer.ensureDeferred(self._run(request))

    async def _run(self, request):
        if isinstance(request, RPCError):
            self._count_error(request)
            self.cost.bump(ERROR_COST)
            return jsonrpc.error_reply(None, request)
        self.requests += 1
        if self.log_requests:
            self.log.info("session {id} ({address}): {method} {params!r:.300}",
                          id=self.session_id, address=self.manager.loggable_address(self),
                          method=request.method, params=request.params)
        try:
            result = await self._call(request)
        except ReplyAndDisconnect as error:
            self._count_error(error)
            self._send(jsonrpc.error_reply(request, error))
            self.close()
            return None
        except RPCError as error:
            self._count_error(error)
            self.cost.bump(ERROR_COST)
            return None if request.is_notification else jsonrpc.error_reply(request, error)
        except Exception:
            self.log.failure("session {id}: {method} failed", id=self.session_id,
                             method=request.method)
            error = RPCError(INTERNAL_ERROR, "internal error")
            self._count_error(error)
            return None if request.is_notification else jsonrpc.error_reply(request, error)
        if request.is_notification:
            return None
        return jsonrpc.result_reply(request, result)

    async def _call(self, request):
        methods = self.manager.methods
        if self.protocol_version is None:
            if request.method != "server.version":
                raise ReplyAndDisconnect(BAD_REQUEST, "use server.version to identify client")
            self.stats.request(request.method, True)
            return methods.negotiate(self, request.params)
        await self._admit()
        try:
            handler = methods.handler(self, request.method)
            self.stats.request(request.method, handler is not None)
            if handler is None:
                raise RPCError(METHOD_NOT_FOUND, f"unknown method {request.method[:80]!r}")
            try:
                if isinstance(request.params, dict):
                    outcome = handler(self, **request.params)
                else:
                    outcome = handler(self, *request.params)
            except TypeError as error:
                raise RPCError(INVALID_PARAMS, f"invalid params for {request.method}: "
                                               f"{error}") from None
            d = defer.ensureDeferred(outcome) if hasattr(outcome, "__await__") and \
                not isinstance(outcome, defer.Deferred) else defer.maybeDeferred(
                    lambda: outcome)
            d.addTimeout(self.manager.settings.request_timeout, self.manager.clock)
            try:
                return await d
            except defer.TimeoutError:
                raise RPCError(SERVER_BUSY, "server busy - request timed out") from None
        finally:
            self._release()

    @property
    def group_key(self):
        """What subscription limits count this session under: its group, or itself."""
        return self.group.name if self.group is not None else f"session {self.session_id}"

    def extra_cost(self) -> float:
        """The cost the rest of the session's group ran up (0 when ungrouped)."""
        if self.group is None:
            return 0.0
        return max(0.0, self.group.cost() - self.cost.current())

    async def _admit(self):
        """Wait for a slot under the cost model's concurrency; sleep if the session is costly."""
        sleep, concurrency = self.cost.throttle(self.extra_cost())
        if concurrency <= 0:
            raise ReplyAndDisconnect(EXCESSIVE_RESOURCE_USAGE, "excessive resource usage")
        if sleep:
            await task.deferLater(self.manager.clock, sleep, lambda: None)
        while self._in_flight >= concurrency:
            d = defer.Deferred()
            self._waiting.append(d)
            await d
        self._in_flight += 1

    def _release(self):
        self._in_flight -= 1
        if self._waiting:
            self._waiting.pop(0).callback(None)

    def _refuse_too_long(self):
        self._refuse(RPCError(INVALID_PARAMS, f"request too long: over {self.max_recv:,d} "
                                              "bytes"))

    def _refuse(self, error: RPCError):
        """Answer `error` to no request in particular, and close."""
        self._count_error(error)
        self._send(jsonrpc.error_reply(None, error))
        self.close()

    def _count_error(self, error: RPCError):
        self.errors += 1
        self.stats.error(error.code)

    def _count_received(self, count: int):
        """A whole message of `count` bytes arrived: count it, and the session is not idle."""
        self._count_bytes(count)
        self._mark_active()

    def _count_bytes(self, count: int):
        """Count `count` bytes received, whole messages or not, toward traffic and cost."""
        self.bytes_received += count
        self.stats.bytes_received += count
        self.cost.bump_bytes(count)

    def _mark_active(self):
        """A request arrived: SESSION_TIMEOUT counts from now (a mere byte does not)."""
        self.last_activity = self.manager.clock.seconds()

    # ---- output ----------------------------------------------------------

    def bump_cost(self, amount: float):
        self.cost.bump(amount)

    def _send(self, payload):
        data = jsonrpc.encode(payload)
        if len(data) > self.max_send:
            data = jsonrpc.encode(self._too_large(payload))
        self.cost.bump_bytes(len(data))
        self.bytes_sent += len(data)
        self.stats.bytes_sent += len(data)
        self._emit(data)

    def _too_large(self, payload):
        error = RPCError(RESPONSE_TOO_LARGE, "response too large")
        if isinstance(payload, list):
            return jsonrpc.error_reply(None, error)
        return {"jsonrpc": "2.0", "id": payload.get("id"),
                "error": {"code": error.code, "message": error.message}}

    def send_notification(self, method: str, params):
        if not self._closing:
            self._send(jsonrpc.notification(method, params))

    def _emit(self, data: bytes):
        if self._paused_writing:
            self._written_while_paused += len(data)
            if self._written_while_paused > self.manager.max_buffered:
                self.log.info("session {id}: client not reading; disconnecting",
                              id=self.session_id)
                self._closing = True
                self._abort()
                return
        self._write(data)

    # IPushProducer: the transport tells us when the client stops reading.
    def pauseProducing(self):
        # Transports call this on every write while their buffer is over its size,
        # so only the first call of a pause starts the count.
        if self._paused_writing:
            return
        self._paused_writing = True
        self._written_while_paused = 0
        self._pause_reading()          # and stop reading its requests meanwhile

    def resumeProducing(self):
        self._paused_writing = False
        self._resume_reading()

    def stopProducing(self):
        self._closing = True           # the connection is going: nothing more to send


def send_without_delay(transport):
    """Set TCP_NODELAY on the TCP connection under `transport` (TLS wraps it).

    Without it, Nagle's algorithm holds a reply's last partial segment while
    an earlier one is unacknowledged, and the client acknowledges late on
    purpose (delayed ACK, 40 ms on Linux): a 1.9 MB history reply took 45 ms
    instead of 1.5 ms two times in five, and closely following replies wait
    the same way.  Replies are written whole, so there is nothing to coalesce.
    """
    while transport is not None:
        set_no_delay = getattr(transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
            return
        transport = getattr(transport, "transport", None)


@implementer(IHandshakeListener)
class ElectrumSession(SessionBase, protocol.Protocol):
    """A session over a stream transport (TCP or TLS): one JSON message per line.

    Two deadlines keep a slow client from holding its slot: over TLS the
    handshake must be done within HANDSHAKE_TIMEOUT of the connection, and
    every request line must arrive whole within PARTIAL_REQUEST_TIMEOUT of its
    first byte.
    """

    def __init__(self, manager, tls=False):
        super().__init__(manager)
        self._buffer = bytearray()
        self._discarding = False
        self._tls = tls
        settings, clock = manager.settings, manager.clock
        self._handshake = Deadline(clock, settings.handshake_timeout, self._handshake_too_slow)
        self._line = Deadline(clock, settings.partial_request_timeout, self._line_too_slow)

    def connectionMade(self):
        peer = self.transport.getPeer()
        self.remote_address = getattr(peer, "host", "")
        send_without_delay(self.transport)
        self.transport.registerProducer(self, True)
        if self._tls:
            self._handshake.start()
        self.manager.session_opened(self)

    def handshakeCompleted(self):
        self._handshake.stop()

    def connectionLost(self, reason=None):
        self._closing = True
        self._handshake.stop()
        self._line.stop()
        self.manager.session_closed(self)

    def close(self):
        if not self._closing:
            self._closing = True
            self.transport.loseConnection()

    def _pause_reading(self):
        self.transport.pauseProducing()

    def _resume_reading(self):
        self.transport.resumeProducing()
        if self._buffer:
            self._line.restart()        # the time we did not read was not the client's

    def _abort(self):
        self.transport.abortConnection()

    # ---- framing ---------------------------------------------------------

    def dataReceived(self, data: bytes):
        self._count_bytes(len(data))
        start = 0       # a position, not slicing: many pipelined lines cost one pass
        while start < len(data):
            newline = data.find(b"\n", start)
            if newline < 0:
                if not self._discarding:
                    self._buffer += data[start:]
                    self._line.start()          # timed from the line's first byte
                    if len(self._buffer) > self.max_recv:
                        self._line_too_long()
                return
            chunk, start = data[start:newline], newline + 1
            if self._discarding:
                return
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
            if self._closing:
                return

    def _line_too_long(self):
        self._stop_reading_lines()
        self._refuse_too_long()

    def _line_too_slow(self):
        if self._paused_writing:
            # We are not reading (the client is not reading our replies): the rest of
            # the line may be waiting on our side.  Resuming starts a new period.
            return
        self.stats.timed_out["partial_request"] += 1
        self._stop_reading_lines()
        self._refuse(RPCError(BAD_REQUEST, "request not received in full within "
                                           f"{self.manager.settings.partial_request_timeout}"
                                           " seconds"))

    def _stop_reading_lines(self):
        """Drop the partial line and whatever follows: the session is being refused."""
        self._buffer.clear()
        self._discarding = True
        self._line.stop()

    def _handshake_too_slow(self):
        self.stats.timed_out["handshake"] += 1
        self._abort()

    def _write(self, data: bytes):
        self.transport.write(data + b"\n")


class WebSocketSession(SessionBase):
    """A session over WebSocket: one JSON message per text frame, no newline."""

    def __init__(self, manager, remote_address):
        super().__init__(manager)
        self.remote_address = remote_address
        self.transport = None

    def negotiationStarted(self, transport):
        self.transport = transport
        limit_messages(transport, self.max_recv, self._refuse_too_long)

    def negotiationFinished(self):
        if self.manager.refuses(self.remote_address):
            self.close()
            return
        # The upgraded HTTP channel is still the stream's producer; the session takes
        # its place, or it would never hear that the client stopped reading.
        self._stream().unregisterProducer()
        self.transport.attachProducer(self)
        send_without_delay(self._stream())
        self.manager.session_opened(self)

    def textMessageReceived(self, message: str):
        self._receive(message.encode())

    def bytesMessageReceived(self, data: bytes):
        self._receive(data)

    def _receive(self, data):
        self._count_received(len(data))     # never over max_recv: limit_messages sees to it
        self.message_received(data)

    def pongReceived(self, payload: bytes):
        pass

    def connectionLost(self, reason=None):
        self._closing = True
        self.manager.session_closed(self)

    def close(self):
        if not self._closing and self.transport is not None:
            self._closing = True
            self.transport.loseConnection()

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

    def _abort(self):
        self._stream().abortConnection()


class WebSocketFactory:
    """Makes WebSocket sessions (Twisted's WebSocketServerFactory protocol)."""

    def __init__(self, manager):
        self.manager = manager

    def buildProtocol(self, request):
        return WebSocketSession(self.manager, request.getClientAddress().host)


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
