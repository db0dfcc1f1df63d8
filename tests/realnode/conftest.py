"""Fixtures of the real-node suite: the node with its wallet's chain (made once per
session), our server in-process indexing it, and an Electrum client over TCP."""


import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, endpoints, protocol, reactor

from electrumx.config.services import Service
from electrumx.controller import Controller
from tests.config.helpers import load
from tests.fixtures.host import required_program
from tests.fixtures.regtest import wait_for, within
from tests.realnode.node import REQUIRE_ENV, BSVNode, find_bitcoind
from tests.realnode.workload import generate


@pytest.fixture(scope="session")
def bitcoind():
    """The installed node; skips (or fails, when CI requires it) if there is none."""
    return required_program(find_bitcoind(), "the Bitcoin SV node",
                            "python3 tests/realnode/install_node.py", REQUIRE_ENV)


class Chain:
    """The session's node and what its wallet made."""

    def __init__(self, node, generated):
        self.node = node
        self.generated = generated


@pytest.fixture(scope="session")
def chain(bitcoind, tmp_path_factory):
    node = BSVNode(bitcoind, tmp_path_factory.mktemp("bsv-node"))
    node.start()
    try:
        generated = generate(node)
        yield Chain(node, generated)
    finally:
        node.stop()


@pytest.fixture
def spare_nodes(bitcoind, tmp_path):
    """spare_node(name) -> a started BSVNode of its own; all stopped after the test."""
    nodes = []

    def start(name):
        node = BSVNode(bitcoind, tmp_path / name, name)
        nodes.append(node)
        return node.start()
    yield start
    for node in nodes:
        node.kill()


@pytest.fixture
def servers(tmp_path):
    """start(urls, wait=True) -> a started Controller indexing those nodes (in-process)."""
    controllers = []

    async def start(urls, wait=True, **env):
        settings = load({"COIN": "BitcoinSV", "NET": "regtest",
                         "DB_DIRECTORY": str(tmp_path / f"db{len(controllers)}"),
                         "DAEMON_URL": ",".join(urls), "DAEMON_POLL_INTERVAL_BLOCKS": "50",
                         "DAEMON_POLL_INTERVAL_MEMPOOL": "50", "COST_HARD_LIMIT": "0",
                         **env})
        settings.services = [Service("tcp", "127.0.0.1", 0)]
        controller = Controller(settings, reactor)
        controller.daemon.backoff_max = 0.5
        controller.startService()
        controllers.append(controller)
        if wait:
            await caught_up(controller)
        return controller
    yield start
    for controller in controllers:
        pytest_twisted.blockon(controller.stopService())


async def caught_up(controller, timeout=90):
    await within(controller.indexer.when_caught_up(), timeout)
    await wait_for(lambda: controller.sessions.ports, timeout)


class ElectrumClient(protocol.Protocol):
    """One Electrum session: requests and batches by id, notifications kept in order."""

    def __init__(self):
        self.pending = {}
        self.next_id = 0
        self.buffer = b""
        self.notifications = []

    def dataReceived(self, data):
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = orjson.loads(line)
            if isinstance(message, dict) and "method" in message:
                self.notifications.append((message["method"], message["params"]))
                continue
            key = min(r["id"] for r in message) if isinstance(message, list) else message["id"]
            self.pending.pop(key).callback(message)

    async def _send(self, payload, key):
        d = self.pending[key] = defer.Deferred()
        self.transport.write(orjson.dumps(payload) + b"\n")
        return await within(d, 60)

    async def call(self, method, *params):
        self.next_id += 1
        reply = await self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                  "params": list(params)}, self.next_id)
        assert "error" not in reply, (method, params, reply)
        return reply["result"]

    async def batch(self, method, params_list):
        """The results of one JSON-RPC batch, in order."""
        first = self.next_id + 1
        self.next_id += len(params_list)
        replies = await self._send([{"jsonrpc": "2.0", "id": first + i, "method": method,
                                     "params": list(p)} for i, p in enumerate(params_list)],
                                   first)
        by_id = {r["id"]: r for r in replies}
        results = []
        for i in range(len(params_list)):
            reply = by_id[first + i]
            assert "error" not in reply, (method, params_list[i], reply)
            results.append(reply["result"])
        return results

    def last(self, method):
        """The params of the latest notification of `method`, or None."""
        found = [params for m, params in self.notifications if m == method]
        return found[-1] if found else None


async def electrum(controller, version="1.4"):
    """A connected ElectrumClient that has negotiated protocol `version`."""
    client = ElectrumClient()
    port = controller.sessions.ports[0].getHost().port
    await endpoints.connectProtocol(
        endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    await client.call("server.version", "realnode-test", version)
    return client
