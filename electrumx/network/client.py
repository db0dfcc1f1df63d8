"""A small JSON-RPC client for checking another server, with every limit built in.

The other side is a stranger: each reply must arrive within `request_timeout`,
no line may exceed `max_line` bytes and the whole conversation `max_total`
bytes.  Any breach fails every pending request with a `PeerError` and
drops the connection at once, so a hostile peer costs us one bounded socket.
"""

import orjson
from twisted.internet import defer, endpoints, protocol, ssl

from electrumx.network.peer import PeerError, PeerUnreachable


class PeerClientProtocol(protocol.Protocol):
    """Newline-framed JSON-RPC requests to a peer; server notifications are ignored."""

    def __init__(self, clock, request_timeout, max_line, max_total):
        self.clock = clock
        self.request_timeout = request_timeout
        self.max_line = max_line
        self.max_total = max_total
        self.received = 0
        self._buffer = bytearray()
        self._pending = {}
        self._next_id = 0
        self._failure = None

    def dataReceived(self, data):
        if self._failure is not None:
            return
        self.received += len(data)
        if self.received > self.max_total:
            self.fail(PeerError(f"sent over {self.max_total:,d} bytes"))
            return
        self._buffer += data
        while self._failure is None:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > self.max_line:
                    self.fail(PeerError(f"a line over {self.max_line:,d} bytes"))
                return
            line = bytes(self._buffer[:newline])
            del self._buffer[:newline + 1]
            if len(line) > self.max_line:
                self.fail(PeerError(f"a line over {self.max_line:,d} bytes"))
                return
            if line.strip():
                self._message(line)

    def _message(self, line):
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.fail(PeerError("sent invalid JSON"))
            return
        if not isinstance(message, dict):
            self.fail(PeerError("sent a message that is not an object"))
            return
        if "method" in message:
            return                      # a notification (we may have subscribed to headers)
        pending = self._pending.pop(message.get("id"), None)
        if pending is None:
            self.fail(PeerError("sent a reply to no request"))
            return
        method, d, timer = pending
        timer.cancel()
        error = message.get("error")
        if error:
            d.errback(PeerError(f"{method} returned an error: {str(error)[:100]}"))
        else:
            d.callback(message.get("result"))

    def request(self, method: str, params=()):
        """A Deferred of the result; fails with PeerError on an error, timeout or breach."""
        if self._failure is not None:
            return defer.fail(self._failure)
        self._next_id += 1
        request_id = self._next_id
        d = defer.Deferred()
        timer = self.clock.callLater(self.request_timeout, self._timed_out, request_id)
        self._pending[request_id] = (method, d, timer)
        self.transport.write(orjson.dumps({"jsonrpc": "2.0", "id": request_id,
                                           "method": method, "params": list(params)}) + b"\n")
        return d

    def _timed_out(self, request_id):
        method = self._pending[request_id][0]
        self.fail(PeerError(f"{method} timed out after {self.request_timeout:g} s"))

    def fail(self, error: PeerError):
        """Fail everything pending with `error` and drop the connection."""
        if self._failure is None:
            self._failure = error
        pending, self._pending = self._pending, {}
        for _method, d, timer in pending.values():
            if timer.active():
                timer.cancel()
            d.errback(self._failure)
        if self.transport is not None and self.connected:
            self.transport.abortConnection()

    def connectionLost(self, reason=None):
        self.connected = False
        self.fail(PeerError("connection lost"))

    def close(self):
        self._failure = self._failure or PeerError("closed")
        self.transport.loseConnection()


class _OneClient(protocol.Factory):
    """Hands out one prepared client protocol, without a log line per connection."""

    noisy = False

    def __init__(self, client):
        self.client = client

    def buildProtocol(self, addr):
        return self.client


def peer_endpoint(reactor, host: str, port: int, use_tls: bool, timeout: float,
                  bind_address=None):
    """The client endpoint of a peer; TLS is not verified, as peers use self-signed certs."""
    endpoint = endpoints.HostnameEndpoint(
        reactor, host, port, timeout=timeout,
        bindAddress=(bind_address, 0) if bind_address else None)
    if use_tls:
        endpoint = endpoints.wrapClientTLS(ssl.CertificateOptions(), endpoint)
    return endpoint


async def connect_peer(reactor, host, port, use_tls, limits, bind_address=None, proxy=None):
    """A connected PeerClientProtocol; connection failures become PeerUnreachable.

    Through `proxy` (a TorProxy) connections and replies take longer, so the
    limits' proxy timeouts apply.
    """
    if proxy is not None:
        client = PeerClientProtocol(reactor, limits.proxy_request_timeout, limits.max_line,
                                    limits.max_total)
        endpoint = proxy.endpoint(host, port, use_tls, limits.proxy_connect_timeout)
    else:
        client = PeerClientProtocol(reactor, limits.request_timeout, limits.max_line,
                                    limits.max_total)
        endpoint = peer_endpoint(reactor, host, port, use_tls, limits.connect_timeout,
                                 bind_address)
    d = endpoint.connect(_OneClient(client))
    d.addTimeout((limits.connect_timeout if proxy is None else limits.proxy_connect_timeout)
                 + 1, reactor)
    try:
        await d
    except Exception as error:
        raise PeerUnreachable(f"cannot connect to {host}:{port}: "
                        f"{error.__class__.__name__}") from None
    return client
