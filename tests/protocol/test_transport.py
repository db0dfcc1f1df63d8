"""The Electrum transport over real TCP sockets on 127.0.0.1, against a real index."""

import ipaddress
import socket
import types

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, endpoints, protocol, reactor

from electrumx.chain.hashes import hash_to_hex_str, scripthash_from_script
from electrumx.config.services import Service
from electrumx.index.read_api import ChainReader
from electrumx.network.directory import NoPeers
from electrumx.protocol.methods import ElectrumMethods
from electrumx.protocol.session_manager import SessionManager
from electrumx.protocol.subscriptions import SubscriptionRegistry
from tests.fixtures.blocks import script_for, spend
from tests.fixtures.regtest import wait_for, within
from tests.fixtures.slow_clients import shrink_send_buffer


class LineClient(protocol.Protocol):
    """Collects newline-framed replies; `closed` fires when the server hangs up."""

    loads = staticmethod(orjson.loads)

    def __init__(self):
        self.lines = defer.DeferredQueue()
        self.buffer = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.lines.put(self.loads(line))

    def connectionLost(self, reason):
        self.closed.callback(None)

    def send(self, *messages):
        for m in messages:
            self.transport.write(m if isinstance(m, bytes) else orjson.dumps(m) + b"\n")

    def reply(self):
        return within(self.lines.get(), 10)


LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1"))
"""SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS by default."""


def settings(**overrides):
    from electrumx.coins import BitcoinRegtest
    values = dict(coin=BitcoinRegtest, max_send=1_000_000, max_recv=5_000, max_sessions=100,
                  cost_soft_limit=1000, cost_hard_limit=10000, bandwidth_unit_cost=5000,
                  request_sleep=2500, initial_concurrent=10, request_timeout=30,
                  session_timeout=600, handshake_timeout=10, unidentified_timeout=30,
                  partial_request_timeout=30, max_clients_per_ip=12,
                  subnets_to_exclude_from_per_ip_limits=LOOPBACK, session_group_by_subnet_ipv4=24,
                  session_group_by_subnet_ipv6=48, drop_client=None, banner_file=None,
                  tor_banner_file=None, donation_address="", report_services=[],
                  services=[Service("tcp", "127.0.0.1", 0)], max_subs=1000, max_session_subs=1000, max_group_subs=1000,
                  ssl_certfile=None, ssl_keyfile=None, log_sessions=0, log_clients=False,
                  anon_logs=False)
    values.update(overrides)
    return types.SimpleNamespace(**values)


@pytest.fixture
def server(start_node, indexer_for):
    """A session manager listening on 127.0.0.1:0 over an index of the tiny chain (or of
    `blocks`), its node showing blocks up to `reveal`."""
    managers = []

    async def make(blocks=None, reveal=20, **overrides):
        node = start_node(reveal=reveal, blocks=blocks)
        harness = indexer_for(node)
        await harness.caught_up()
        reader = ChainReader(harness.db, harness.mempool, harness.daemon)
        s = settings(**overrides)
        registry = SubscriptionRegistry.from_settings(reader, s)
        harness.indexer.add_listener(reader.on_index_change)
        methods = ElectrumMethods(reader=reader, settings=s, subscriptions=registry,
                                  peers=NoPeers(), clock=reactor)
        manager = SessionManager(s, methods, reactor)
        manager.startService()
        cannot_listen = []
        manager.add_listeners(reactor, cannot_listen.append)
        managers.append(manager)
        await wait_for(lambda: manager.ports or cannot_listen)
        assert cannot_listen == []
        return types.SimpleNamespace(node=node, harness=harness, manager=manager,
                                     port=manager.ports[0].getHost().port)
    yield make
    for manager in managers:
        pytest_twisted.blockon(defer.maybeDeferred(manager.stopService))


async def connect(port, source="127.0.0.1", client_class=LineClient):
    client = client_class()
    await endpoints.connectProtocol(
        endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(source, 0)),
        client)
    return client


def version(n=1):
    return {"jsonrpc": "2.0", "id": n, "method": "server.version", "params": ["t", "1.4"]}


def sends_without_delay(manager):
    """Whether every server-side session's socket has TCP_NODELAY set (under TLS or
    WebSocket too): without it, replies wait on the client's delayed ACKs."""
    flags = []
    for session in manager.sessions.values():
        transport = session.transport
        while getattr(transport, "transport", None) is not None:   # TLS, WebSocket
            transport = transport.transport
        flags.append(transport.getHandle().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    return bool(flags) and all(flags)


def count_queued_writes(session):
    """Count the calls of the session's transport's `write` (Twisted's queue), which the
    session uses only for what the socket did not take at once."""
    calls = []
    write = session.transport.write
    session.transport.write = lambda data: (calls.append(len(data)), write(data))[1]
    return calls


def headers(n, start=0, count=20):
    return {"jsonrpc": "2.0", "id": n, "method": "blockchain.block.headers",
            "params": [start, count]}


async def one_session(server):
    """A server, a client that has negotiated, and its session on the server's side."""
    srv = await server()
    client = await connect(srv.port)
    client.send(version())
    await client.reply()
    [session] = srv.manager.sessions.values()
    return client, session


@pytest_twisted.ensureDeferred
async def test_replies_go_straight_to_the_socket(server):
    client, session = await one_session(server)
    queued = count_queued_writes(session)
    client.send(*[headers(n, start=n) for n in range(2, 12)])
    replies = [await client.reply() for _ in range(10)]
    assert [r["id"] for r in replies] == list(range(2, 12))
    assert [r["result"]["count"] for r in replies] == [min(20, 21 - n) for n in range(2, 12)]
    assert queued == []
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_what_the_socket_cannot_take_is_queued_and_arrives_in_order(server):
    client, session = await one_session(server)
    shrink_send_buffer(session, 4096)
    client.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    client.transport.pauseProducing()
    queued = count_queued_writes(session)
    client.send(*[headers(n) for n in range(2, 42)])         # 3.3 KB a reply
    await wait_for(lambda: queued)
    client.transport.resumeProducing()
    replies = [await client.reply() for _ in range(40)]
    assert [r["id"] for r in replies] == list(range(2, 42))
    assert all(r["result"]["hex"] == replies[0]["result"]["hex"] for r in replies)
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_replies_are_sent_without_delay(server):
    srv = await server()
    client = await connect(srv.port)
    client.send(version())
    assert (await client.reply())["result"][1] == "1.4"
    assert sends_without_delay(srv.manager)
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_version_must_come_first(server):
    srv = await server()
    client = await connect(srv.port)
    client.send({"id": 1, "method": "server.ping"})
    reply = await client.reply()
    assert reply["error"] == {"code": 1, "message": "use server.version to identify client"}
    await within(client.closed)


@pytest_twisted.ensureDeferred
async def test_requests_batches_and_dialects(server):
    srv = await server()
    client = await connect(srv.port)
    client.send(version())
    assert (await client.reply())["result"][1] == "1.4"
    client.send({"id": "a", "method": "blockchain.block.header", "params": [0]})
    reply = await client.reply()
    assert reply == {"id": "a", "result": srv.harness.db.header(0).hex(), "error": None}
    client.send({"method": "server.ping", "params": []},          # a notification: no reply
                [{"jsonrpc": "2.0", "id": 7, "method": "server.ping"},
                 {"jsonrpc": "2.0", "id": 8, "method": "no.such.method"},
                 {"jsonrpc": "2.0", "id": 9, "method": "blockchain.block.header",
                  "params": {"height": 1}},
                 {"jsonrpc": "2.0", "id": 10, "method": "blockchain.block.header",
                  "params": [1, 2, 3, 4]}])
    batch = await client.reply()
    assert [r["id"] for r in batch] == [7, 8, 9, 10]
    assert batch[0] == {"jsonrpc": "2.0", "id": 7, "result": None}
    assert batch[1]["error"]["code"] == -32601
    assert batch[2]["result"] == srv.harness.db.header(1).hex()
    assert batch[3]["error"]["code"] == -32602
    client.send(b"{not json\n", b"[]\n", b'"a string"\n')
    assert (await client.reply())["error"]["code"] == -32700
    assert (await client.reply())["error"]["code"] == -32600
    assert (await client.reply())["error"]["code"] == -32600
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_line_over_max_recv_is_refused_without_buffering(server):
    srv = await server(max_recv=5_000)
    client = await connect(srv.port)
    client.send(version())
    await client.reply()
    for _ in range(10):
        client.send(b"x" * 1_000)                # no newline yet
    reply = await client.reply()
    assert "request too long" in reply["error"]["message"]
    await within(client.closed)
    assert not srv.manager.sessions


@pytest_twisted.ensureDeferred
async def test_max_sessions_pauses_and_resumes_accepting(server):
    srv = await server(max_sessions=2)
    first, second = await connect(srv.port), await connect(srv.port)
    await wait_for(lambda: len(srv.manager.sessions) == 2)
    third = await connect(srv.port)                 # the kernel queues it meanwhile
    third.send(version(3))
    first.transport.loseConnection()
    reply = await third.reply()                      # served once a slot frees
    assert reply["id"] == 3
    second.transport.loseConnection()
    third.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_an_abusive_session_is_cut_off(server):
    srv = await server(cost_soft_limit=10, cost_hard_limit=200, request_sleep=0)
    client = await connect(srv.port)
    client.send(version())
    await client.reply()
    for n in range(50):
        client.send({"id": n, "method": "no.such.method"})   # each error costs 100
    replies = []
    while True:
        reply = await client.reply()
        replies.append(reply)
        if reply["error"]["code"] == -101:
            break
    assert replies[-1]["error"]["message"] == "excessive resource usage"
    await within(client.closed)


@pytest_twisted.ensureDeferred
async def test_a_subnet_pays_for_its_abusive_sessions(server):
    """Cost run up by one session throttles the next one from its /24, not other subnets."""
    srv = await server(cost_soft_limit=10, cost_hard_limit=200, request_sleep=0)
    srv.manager.groups.exempt_private = False     # loopback stands in for a public subnet
    abuser = await connect(srv.port, source="127.0.0.1")
    abuser.send(version())
    await abuser.reply()
    abuser.send(*[{"id": n, "method": "no.such.method"} for n in range(5)])
    await within(abuser.closed)
    group = srv.manager.groups.groups["127.0.0.0/24"]
    assert not group.sessions and group.retained_cost >= 200

    neighbour = await connect(srv.port, source="127.0.0.5")
    neighbour.send(version(), {"id": 2, "method": "server.ping"})
    assert "result" in await neighbour.reply()
    assert (await neighbour.reply())["error"]["message"] == "excessive resource usage"
    await within(neighbour.closed)

    stranger = await connect(srv.port, source="127.0.1.1")
    stranger.send(version(), {"id": 2, "method": "server.ping"})
    assert "result" in await stranger.reply()
    assert await stranger.reply() == {"id": 2, "result": None, "error": None}
    stranger.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_headers_notification_after_a_new_block(server):
    srv = await server()
    client = await connect(srv.port)
    client.send(version(), {"id": 2, "method": "blockchain.headers.subscribe"})
    await client.reply()
    tip = await client.reply()
    assert tip["result"]["height"] == 20
    srv.node.node.reveal(21)
    note = await client.reply()
    assert note["method"] == "blockchain.headers.subscribe"
    assert note["params"][0]["height"] == 21
    assert note["params"][0]["hex"] == srv.node.node.blocks[21][:80].hex()
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_scripthash_subscription_sees_mempool_and_blocks(server):
    srv = await server()
    node = srv.node.node
    prevout, value, script = node.unspent_outputs()[0]
    target = script_for(4242)
    sh = scripthash_from_script(target)
    client = await connect(srv.port)
    client.send(version(), {"id": 2, "method": "blockchain.scripthash.subscribe",
                            "params": [sh]})
    await client.reply()
    assert (await client.reply())["result"] is None
    tx = spend([(prevout[:32], int.from_bytes(prevout[32:], "little"))],
               [(value - 1000, target)])
    node.send(tx.serialize())
    note = await client.reply()
    assert note["method"] == "blockchain.scripthash.subscribe" and note["params"][0] == sh
    client.send({"id": 3, "method": "blockchain.scripthash.get_history", "params": [sh]})
    history = await client.reply()
    assert history["result"] == [{"tx_hash": tx.txid_hex, "height": 0, "fee": 1000}]
    node.mine(1)
    note = await client.reply()
    assert note["method"] == "blockchain.scripthash.subscribe"
    client.send({"id": 4, "method": "blockchain.scripthash.get_history", "params": [sh]})
    history = await client.reply()
    assert "method" not in history, "one notification per change, never a mixed status"
    assert history["result"] == [{"tx_hash": tx.txid_hex, "height": node.height}]
    assert hash_to_hex_str(tx.txid) == tx.txid_hex
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_tls_listener(server, tmp_path):
    from twisted.internet import ssl
    from tests.config.certs import self_signed as make_certificate
    cert, key = make_certificate(tmp_path)
    srv = await server(services=[Service("ssl", "127.0.0.1", 0)], ssl_certfile=cert,
                       ssl_keyfile=key)
    client = LineClient()
    options = ssl.optionsForClientTLS(
        "localhost", ssl.Certificate.loadPEM(open(cert, "rb").read()))
    await endpoints.connectProtocol(endpoints.wrapClientTLS(
        options, endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", srv.port)), client)
    client.send(version())
    assert (await client.reply())["result"][1] == "1.4"
    assert sends_without_delay(srv.manager)
    client.transport.loseConnection()


class WebSocketClient:
    """A real WebSocket client (Twisted's) collecting JSON messages."""

    def __init__(self):
        self.messages = defer.DeferredQueue()
        self.transport = None

    def negotiationStarted(self, transport):
        self.transport = transport

    def negotiationFinished(self):
        pass

    def textMessageReceived(self, message):
        assert not message.endswith("\n")
        self.messages.put(orjson.loads(message))

    def bytesMessageReceived(self, data):
        self.messages.put(orjson.loads(data))

    def pongReceived(self, payload):
        pass

    def connectionLost(self, reason):
        pass


@pytest_twisted.ensureDeferred
async def test_websocket_one_message_per_frame(server):
    from twisted.web.websocket import WebSocketClientEndpoint
    srv = await server(services=[Service("ws", "127.0.0.1", 0)])
    client = WebSocketClient()

    class Factory:
        def buildProtocol(self, url):
            return client
    endpoint = WebSocketClientEndpoint.new(reactor, f"ws://127.0.0.1:{srv.port}/")
    await defer.ensureDeferred(endpoint.connect(Factory()))
    client.transport.sendTextMessage(orjson.dumps(version()).decode())
    assert (await within(client.messages.get(), 10))["result"][1] == "1.4"
    assert sends_without_delay(srv.manager)
    client.transport.sendTextMessage(orjson.dumps(
        [{"id": 2, "method": "blockchain.block.header", "params": [0]}]).decode())
    reply = await within(client.messages.get(), 10)
    assert reply[0]["result"] == srv.harness.db.header(0).hex()
    client.transport.loseConnection()
    await wait_for(lambda: not srv.manager.sessions)


@pytest_twisted.ensureDeferred
async def test_a_thousand_idle_connections_do_not_stop_service(server):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2_200:
        pytest.skip(f"needs 2,200 file descriptors; the hard limit is {hard}")
    if soft < 2_200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096 if hard == resource.RLIM_INFINITY
                                                    else min(4096, hard), hard))
    srv = await server(max_sessions=2_000)
    idle = []
    for _ in range(40):         # in waves smaller than the listen backlog
        idle.extend(await defer.gatherResults(
            [defer.ensureDeferred(connect(srv.port)) for _ in range(25)]))
    await wait_for(lambda: len(srv.manager.sessions) == 1_000)
    client = await connect(srv.port)
    client.send(version())
    assert (await client.reply())["result"][1] == "1.4"
    for c in idle + [client]:
        c.transport.loseConnection()
    await wait_for(lambda: not srv.manager.sessions)
