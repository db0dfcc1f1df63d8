"""A connection slot cannot be held for long by a client that does not get on with it.

Stalled TLS handshakes, WebSocket upgrades that never finish, requests
trickled a byte at a time and sessions that never identify themselves are
dropped after their short timeouts; only whole requests keep a session from
being idle; and one address holds at most MAX_CLIENTS_PER_IP connections,
counted at accept over every listener.  All over real sockets on loopback:
the per-IP tests connect from 127.0.0.2 with the loopback exemption lifted.
"""

import ipaddress

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, endpoints, protocol, reactor, ssl, task

from electrumx.config.services import Service
from electrumx.listener import Listener
from electrumx.protocol.session_manager import SessionManager
from tests.config.certs import self_signed
from tests.fixtures.regtest import wait_for, within
from tests.protocol.test_transport import (LineClient, WebSocketClient, connect,  # noqa: F401
                                           server, version)

HALF_A_CLIENT_HELLO = bytes.fromhex("16030100c8010000c40303") + bytes(20)
"""A TLS record header promising 200 bytes of ClientHello, and only a few of them."""

CLOSED_WITHIN = 10.0
"""How long a test waits for the server to drop a slow client: many times the short
timeouts the tests set, and far below the SESSION_TIMEOUT that held them before."""


class RawClient(protocol.Protocol):
    """Sends bytes as told and keeps what comes back; `closed` fires when the server
    hangs up."""

    def __init__(self):
        self.received = b""
        self.closed = defer.Deferred()
        self.trickling = None

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        if self.trickling is not None and self.trickling.running:
            self.trickling.stop()
        self.closed.callback(None)

    def trickle(self, data: bytes, interval: float):
        """Send `data` a byte every `interval` seconds (a slowloris), until closed."""
        remaining = iter(data)
        self.trickling = task.LoopingCall(
            lambda: self.transport.write(bytes([next(remaining, 32)])))
        self.trickling.start(interval)


async def raw_connect(port, source="127.0.0.1", cert=None):
    """A RawClient, over TLS trusting `cert` if given."""
    return await _connect(RawClient(), port, source, cert)


async def tls_connect(port, cert, source="127.0.0.1"):
    return await _connect(LineClient(), port, source, cert)


async def _connect(client, port, source, cert):
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port,
                                            bindAddress=(source, 0))
    if cert is not None:
        options = ssl.optionsForClientTLS("localhost",
                                          ssl.Certificate.loadPEM(open(cert, "rb").read()))
        endpoint = endpoints.wrapClientTLS(options, endpoint)
    await endpoints.connectProtocol(endpoint, client)
    return client


async def websocket_connect(port):
    from twisted.web.websocket import WebSocketClientEndpoint
    client = WebSocketClient()

    class Factory:
        def buildProtocol(self, url):
            return client
    endpoint = WebSocketClientEndpoint.new(reactor, f"ws://127.0.0.1:{port}/")
    await defer.ensureDeferred(endpoint.connect(Factory()))
    return client


async def pause(seconds):
    await task.deferLater(reactor, seconds, lambda: None)


def ports_of(srv):
    """The listening port of each served protocol."""
    return {s.label: s.port.getHost().port for s in srv.manager if isinstance(s, Listener)}


async def tls_server(server, tmp_path, **overrides):
    cert, key = self_signed(tmp_path)
    srv = await server(ssl_certfile=cert, ssl_keyfile=key, **overrides)
    srv.cert = cert
    return srv


# ---- handshakes ------------------------------------------------------------

@pytest.mark.parametrize("sent", [b"", HALF_A_CLIENT_HELLO], ids=["silent", "half hello"])
@pytest_twisted.ensureDeferred
async def test_a_stalled_tls_handshake_is_dropped_and_a_finished_one_is_not(
        server, tmp_path, sent):
    srv = await tls_server(server, tmp_path, services=[Service("ssl", "127.0.0.1", 0)],
                           handshake_timeout=1.0)
    stalled = await raw_connect(srv.port)
    stalled.transport.write(sent)
    finished = await tls_connect(srv.port, srv.cert)
    await within(stalled.closed, CLOSED_WITHIN)
    assert srv.manager.stats.timed_out["handshake"] == 1
    await pause(1.0)                # the finished handshake is past its timeout too
    finished.send(version())
    assert (await finished.reply())["result"][1] == "1.4"
    finished.transport.loseConnection()
    await wait_for(lambda: not srv.manager.sessions)


def upgrade_request() -> bytes:
    return (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n")


@pytest.mark.parametrize("kind, slowly", [("ws", "upgrade"), ("wss", "upgrade"),
                                          ("wss", "tls handshake")])
@pytest_twisted.ensureDeferred
async def test_a_websocket_upgrade_not_done_in_time_is_dropped(server, tmp_path, kind, slowly):
    """Twisted's Site alone restarts its 60 s timeout at every byte of the request.
    Under wss the time runs from accept, the TLS handshake included."""
    from tests.protocol.test_slow_readers import websocket_frame
    srv = await tls_server(server, tmp_path, services=[Service(kind, "127.0.0.1", 0)],
                           handshake_timeout=1.0)
    cert = srv.cert if kind == "wss" else None
    if slowly == "upgrade":
        slow = await raw_connect(srv.port, cert=cert)
        slow.trickle(upgrade_request(), 0.05)
    else:
        slow = await raw_connect(srv.port)
        slow.trickle(HALF_A_CLIENT_HELLO, 0.05)
    prompt = await raw_connect(srv.port, cert=cert)
    prompt.transport.write(upgrade_request())
    await within(slow.closed, CLOSED_WITHIN)
    assert b"HTTP/1.1" not in slow.received
    assert srv.manager.stats.timed_out["handshake"] == 1
    await wait_for(lambda: b"\r\n\r\n" in prompt.received)
    assert prompt.received.startswith(b"HTTP/1.1 101")
    await pause(1.0)                # the upgraded connection is past the timeout too
    prompt.transport.write(websocket_frame(orjson.dumps(version()).decode()))
    await wait_for(lambda: b'"1.4"' in prompt.received)
    prompt.transport.loseConnection()
    await wait_for(lambda: not srv.manager.sessions)


# ---- requests trickled, idleness, identification ------------------------------

@pytest_twisted.ensureDeferred
async def test_a_request_trickled_a_byte_at_a_time_is_cut_off(server):
    srv = await server(partial_request_timeout=0.5)
    client = await connect(srv.port)
    client.send(version())
    await client.reply()
    slow = client.transport
    remaining = iter(orjson.dumps({"id": 2, "method": "server.ping", "params": ["x" * 500]}))
    trickle = task.LoopingCall(lambda: slow.write(bytes([next(remaining)])))
    trickle.start(0.05)
    try:
        reply = await client.reply()
    finally:
        trickle.stop()
    assert reply["id"] is None
    assert reply["error"]["message"] == "request not received in full within 0.5 seconds"
    await within(client.closed, CLOSED_WITHIN)
    assert srv.manager.stats.timed_out["partial_request"] == 1


@pytest_twisted.ensureDeferred
async def test_only_whole_requests_keep_a_session_from_idling(server, monkeypatch):
    monkeypatch.setattr(SessionManager, "IDLE_CHECK_SECS", 0.1)
    srv = await server(session_timeout=1.0)
    pinging, trickling = await connect(srv.port), await connect(srv.port)
    for client in (pinging, trickling):
        client.send(version())
        await client.reply()
    trickling.transport.write(b'{"id": 2, ')
    for n in range(15):             # 2.25 s in all, well past the session timeout
        await pause(0.15)
        pinging.send({"id": n, "method": "server.ping"})
        await pinging.reply()
        trickling.transport.write(b" ")
    await within(trickling.closed, CLOSED_WITHIN)
    pinging.send({"id": 99, "method": "server.ping"})
    assert (await pinging.reply())["id"] == 99
    pinging.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_session_that_never_identifies_itself_is_closed(server):
    srv = await server(unidentified_timeout=1.0)
    silent, identified = await connect(srv.port), await connect(srv.port)
    identified.send(version())
    await identified.reply()
    await within(silent.closed, CLOSED_WITHIN)
    assert srv.manager.stats.timed_out["unidentified"] == 1
    await pause(0.5)                # the identified session is past the timeout too
    identified.send({"id": 2, "method": "server.ping"})
    assert (await identified.reply())["id"] == 2
    identified.transport.loseConnection()


# ---- connections per address --------------------------------------------------

def limited_services():
    return [Service("tcp", "127.0.0.1", 0), Service("ssl", "127.0.0.1", 0),
            Service("ws", "127.0.0.1", 0)]


@pytest_twisted.ensureDeferred
async def test_one_connection_over_max_clients_per_ip_is_refused_at_accept(server, tmp_path):
    """Counted over every listener and from accept: a TLS handshake and a WebSocket
    upgrade that have not finished hold their places as a session does."""
    srv = await tls_server(server, tmp_path, services=limited_services(),
                           max_clients_per_ip=3,
                           subnets_to_exclude_from_per_ip_limits=(
                               ipaddress.ip_network("127.0.0.1/32"),))
    ports = ports_of(srv)
    attacker = ipaddress.ip_address("127.0.0.2")
    session = await connect(ports["tcp"], source="127.0.0.2")
    session.send(version())
    await session.reply()
    handshaking = await raw_connect(ports["ssl"], source="127.0.0.2")
    upgrading = await raw_connect(ports["ws"], source="127.0.0.2")
    await wait_for(lambda: srv.manager.admission.counts.get(attacker) == 3)

    refused = await connect(ports["tcp"], source="127.0.0.2")
    refused.send(version())
    await within(refused.closed, CLOSED_WITHIN)
    assert refused.lines.pending == []
    for kind in ("ssl", "ws"):
        refused = await raw_connect(ports[kind], source="127.0.0.2")
        await within(refused.closed, CLOSED_WITHIN)
        assert refused.received == b""
    assert srv.manager.admission.refused == 3

    others = [await connect(ports["tcp"], source=source)          # a neighbour, and an
              for source in ("127.0.0.3", "127.0.0.1", "127.0.0.1")]  # exempt address
    for n, client in enumerate(others):
        client.send(version(n))
        assert (await client.reply())["id"] == n

    handshaking.transport.loseConnection()          # a place frees
    await wait_for(lambda: srv.manager.admission.counts.get(attacker) == 2)
    admitted = await connect(ports["tcp"], source="127.0.0.2")
    admitted.send(version(7))
    assert (await admitted.reply())["id"] == 7
    for client in [session, upgrading, admitted] + others:
        client.transport.loseConnection()
    await wait_for(lambda: not srv.manager.admission.counts)


@pytest_twisted.ensureDeferred
async def test_a_banned_client_is_turned_away_by_a_tls_listener(server, tmp_path):
    """Refusing by returning None from buildProtocol left a TLS connection open and broken."""
    srv = await tls_server(server, tmp_path, services=[Service("ssl", "127.0.0.1", 0)])
    srv.manager.ban("127.0.0.2")
    banned = await raw_connect(srv.port, source="127.0.0.2")
    await within(banned.closed, CLOSED_WITHIN)
    client = await tls_connect(srv.port, srv.cert)
    client.send(version())
    assert (await client.reply())["result"][1] == "1.4"
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_counts_go_down_however_a_connection_ends(server, tmp_path):
    srv = await tls_server(server, tmp_path, services=limited_services(),
                           max_clients_per_ip=100, subnets_to_exclude_from_per_ip_limits=(),
                           handshake_timeout=1.0, max_recv=1_000)
    ports = ports_of(srv)
    ends = []

    async def stalled_tls():                        # timed out by the server
        client = await raw_connect(ports["ssl"])
        await client.closed

    async def failed_tls():                         # not TLS at all
        client = await raw_connect(ports["ssl"])
        client.transport.write(b"GET / HTTP/1.0\r\n\r\n")
        await client.closed

    async def abandoned_tls():                      # the client gives up mid-handshake
        client = await raw_connect(ports["ssl"])
        client.transport.write(HALF_A_CLIENT_HELLO)
        client.transport.loseConnection()
        await client.closed

    async def stalled_upgrade():                    # timed out by the server
        client = await raw_connect(ports["ws"])
        client.transport.write(b"GET / HTTP/1.1\r\n")
        await client.closed

    async def refused_upgrade():                    # plain HTTP, answered 400
        client = await raw_connect(ports["ws"])
        client.transport.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_for(lambda: b"400" in client.received)
        client.transport.loseConnection()
        await client.closed

    async def websocket_session():
        client = await websocket_connect(ports["ws"])
        client.transport.sendTextMessage(orjson.dumps(version()).decode())
        await within(client.messages.get(), 10)
        client.transport.loseConnection()

    async def tls_session():
        client = await tls_connect(ports["ssl"], srv.cert)
        client.send(version())
        await client.reply()
        client.transport.loseConnection()
        await client.closed

    async def line_too_long():                      # refused by the server
        client = await connect(ports["tcp"])
        client.send(b"x" * 2_000)
        await client.closed

    for end in (stalled_tls, failed_tls, abandoned_tls, stalled_upgrade, refused_upgrade,
                websocket_session, tls_session, line_too_long):
        ends.append(defer.ensureDeferred(end()))
    await wait_for(lambda: sum(srv.manager.admission.counts.values()) >= 1)
    await within(defer.gatherResults(ends), 30)
    await wait_for(lambda: not srv.manager.admission.counts)
    await wait_for(lambda: not srv.manager.sessions)


@pytest.mark.parametrize("host, counted", [
    ("203.0.113.7", "203.0.113.7"),
    ("::ffff:203.0.113.7", "203.0.113.7"),          # IPv4 through a dual-stack listener
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::2", "2001:db8:1:2::/64"),  # the same host's other address
    ("127.0.0.1", None),                             # exempt by default
    ("::ffff:127.0.0.1", None),
    ("::1", None),
    ("/run/electrumx.sock", None),                   # not an IP address
])
def test_what_a_connection_counts_against(host, counted):
    from electrumx.protocol.admission import PerAddressLimit
    from tests.protocol.test_transport import LOOPBACK
    limit = PerAddressLimit(task.Clock(), 12, LOOPBACK)
    result = limit.counted_as(host)
    assert (None if result is None else str(result)) == counted


def test_a_ban_holds_for_an_ipv4_client_of_a_dual_stack_listener():
    """Such a client arrives as ::ffff:a.b.c.d, which a ban of a.b.c.d must cover as the
    per-address limit does."""
    from electrumx.protocol.bans import BanList
    bans = BanList()
    bans.ban("203.0.113.0/24")
    assert bans.is_banned("203.0.113.7") and bans.is_banned("::ffff:203.0.113.7")
    assert not bans.is_banned("::ffff:198.51.100.1") and not bans.is_banned("unix")


def test_refusals_are_logged_once_a_minute_per_address():
    from electrumx.protocol.admission import PerAddressLimit
    from tests.protocol.test_session_logging import Captured
    clock = task.Clock()
    limit = PerAddressLimit(clock, 1)
    first, second = (limit.counted_as(host) for host in ("203.0.113.7", "203.0.113.8"))
    limit.add(first)
    limit.add(second)
    with Captured() as lines:
        for _ in range(100):
            limit.refuse(first)
            limit.refuse(second)
            clock.advance(1)                         # 100 s of refusals
    logged = [line for line in lines if "refusing connections" in line]
    assert logged == ["refusing connections from 203.0.113.7: 1 open, MAX_CLIENTS_PER_IP is 1",
                      "refusing connections from 203.0.113.8: 1 open, MAX_CLIENTS_PER_IP is 1"
                      ] * 2
    assert limit.refused == 200
