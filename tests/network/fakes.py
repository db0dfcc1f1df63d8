"""Small fake Electrum servers on 127.0.0.1, honest by default, hostile on request.

`start_fake(behaviour)` listens on 127.0.0.1:0; `behaviour` maps a method name to
a function (server, params) -> result, or to one of the special values below.
"""

import types

import orjson
from twisted.internet import defer, task
from twisted.protocols.basic import LineOnlyReceiver

from electrumx.coins import BitcoinRegtest
from tests.fixtures.host import listen_on_loopback

SILENT = object()          # never answer
DRIP = object()            # answer one byte at a time, 20 a second, never ending the line
HEADERS = [bytes([i]) * 80 for i in range(21)]
"""The fake chain both the fakes and the manager under test agree on (height 20)."""


def our_reader(height=20):
    return types.SimpleNamespace(height=height, header=lambda h: HEADERS[h])


def honest(server):
    return {
        "server.version": lambda s, p: ["fake 1.0", "1.4"],
        "server.features": lambda s, p: {
            "hosts": {"127.0.0.1": {"tcp_port": s.port}},
            "genesis_hash": BitcoinRegtest.GENESIS_HASH, "protocol_min": "1.4",
            "protocol_max": "1.4", "server_version": "fake 1.0", "pruning": None,
            "hash_function": "sha256"},
        "blockchain.headers.subscribe": lambda s, p: {"height": 20, "hex": HEADERS[20].hex()},
        "blockchain.block.header": lambda s, p: HEADERS[p[0]].hex(),
        "server.peers.subscribe": lambda s, p: s.peers,
        "server.add_peer": lambda s, p: s.announced.append(p[0]) or True,
    }


class FakeSession(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 10_000_000

    def connectionMade(self):
        self.factory.server.connections += 1
        self.factory.server.open += 1

    def connectionLost(self, reason):
        self.factory.server.open -= 1
        if getattr(self, "drip", None) is not None and self.drip.running:
            self.drip.stop()

    def lineReceived(self, line):
        server = self.factory.server
        request = orjson.loads(line)
        server.calls.append(request["method"])
        handler = server.behaviour.get(request["method"])
        if handler is SILENT:
            return
        if handler is DRIP:
            self.transport.write(b'{"id": %d, "result": "' % request["id"])
            self.drip = task.LoopingCall(self.transport.write, b"x")
            self.drip.start(0.05)
            return
        if handler is None:
            self.sendLine(orjson.dumps({"id": request["id"], "error": {"code": -32601,
                                                                      "message": "no"}}))
            return
        result = handler(server, request.get("params", []))
        if isinstance(result, bytes):           # raw bytes, sent as they are
            self.transport.write(result)
            return
        self.sendLine(orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))


class FakeServer:
    def __init__(self, **overrides):
        self.behaviour = honest(self)
        self.behaviour.update(overrides)
        self.calls = []
        self.announced = []
        self.peers = []
        self.connections = 0
        self.open = 0
        self.port = None
        self.listening = None


async def start_fake(**overrides) -> FakeServer:
    server = FakeServer(**overrides)
    server.listening = await listen_on_loopback(FakeSession, server=server)
    server.port = server.listening.getHost().port
    return server


async def stop_fakes(servers):
    await defer.DeferredList([defer.maybeDeferred(s.listening.stopListening)
                              for s in servers])
