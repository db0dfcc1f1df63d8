"""Electrum clients are notified of a mempool transaction and of a block within a second,
while the server polls the node only every 30 s: the real server (Controller) hears the
built-in node's ZMQ notifications, over 127.0.0.1.  Also: the settings, and /metrics."""

import random
import time

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.web.client import Agent, readBody

from electrumx.chain.hashes import scripthash_from_script
from electrumx.config.services import Service
from electrumx.controller import Controller
from electrumx.regtest import txmaker
from tests.admin.test_rpc import port_of
from tests.config.helpers import load, refused
from tests.fixtures.regtest import within, wait_for
from tests.protocol.test_transport import connect

POLL_MS = "30000"


def test_zmq_settings_take_endpoints_and_refuse_anything_else():
    settings = load({"ZMQ_BLOCK_URL": "tcp://127.0.0.1:28332",
                     "ZMQ_TX_URL": "tcp://[::1]:28333", "ZMQ_SEQUENCE_URL": "ipc:///run/zmq"})
    assert (settings.zmq_block_url, settings.zmq_tx_url, settings.zmq_sequence_url) == (
        "tcp://127.0.0.1:28332", "tcp://[::1]:28333", "ipc:///run/zmq")
    assert load().zmq_sequence_url is None
    for bad in ("127.0.0.1:28332", "tcp://127.0.0.1", "http://127.0.0.1:1", "tcp://h:99999"):
        assert "ZMQ_TX_URL" in refused({"ZMQ_TX_URL": bad})


@pytest.fixture
def zmq_server(start_node, tmp_path):
    """A Controller with 30 s polls, told the node's ZMQ endpoints by `settings`."""
    controllers = []

    async def start(topics):
        running = start_node(reveal=20, zmq={t: "tcp://127.0.0.1:*" for t in topics})
        env = {"NET": "regtest", "DB_DIRECTORY": str(tmp_path / "db"),
               "DAEMON_URL": running.url, "DAEMON_POLL_INTERVAL_BLOCKS": POLL_MS,
               "DAEMON_POLL_INTERVAL_MEMPOOL": POLL_MS}
        names = {"hashblock": "ZMQ_BLOCK_URL", "rawtx": "ZMQ_TX_URL",
                 "sequence": "ZMQ_SEQUENCE_URL"}
        env.update({names[t]: url for t, url in running.zmq_urls.items()})
        settings = load(env)
        settings.services = [Service("tcp", "127.0.0.1", 0)]
        settings.metrics_port = 0
        controller = Controller(settings, reactor)
        controllers.append(controller)
        controller.startService()
        await within(controller.indexer.when_caught_up(), 60)
        await wait_for(lambda: controller.sessions.ports)
        controller.indexer.block_watcher.stop()     # blocks by ZMQ alone
        # ZMQ's slow joiner: probe until the server hears the node.
        while not sum(controller.zmq.counts.messages.values()):
            running.node.add_random_transactions(1)
            await task.deferLater(reactor, 0.1, lambda: None)
        await wait_for(lambda: controller.mempool.tx_count == len(running.node.mempool))
        return controller, running
    yield start
    for controller in controllers:
        pytest_twisted.blockon(controller.stopService())


class Wallet:
    """One Electrum session: requests in order, notifications kept apart."""

    def __init__(self, client):
        self.client = client
        self.notifications = []
        self.next_id = 0

    @classmethod
    async def connect(cls, port):
        wallet = cls(await connect(port))
        await wallet.call("server.version", "zmq-test", "1.4")
        return wallet

    async def call(self, method, *params):
        self.next_id += 1
        self.client.send({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                          "params": list(params)})
        while True:
            message = await self.client.reply()
            if "id" in message and message["id"] is not None:
                return message["result"]
            self.notifications.append(message)

    async def notified(self, method, timeout):
        """The first notification of `method` (kept or waited for), and seconds waited."""
        started = time.monotonic()
        while True:
            for message in self.notifications:
                if message["method"] == method:
                    self.notifications.remove(message)
                    return message["params"], time.monotonic() - started
            message = await within(self.client.lines.get(), timeout)
            self.notifications.append(message)


@pytest.mark.parametrize("topics", [("hashblock", "rawtx"), ("sequence",)])
@pytest_twisted.ensureDeferred
async def test_a_subscribed_wallet_hears_of_its_payment_and_its_block_at_once(zmq_server,
                                                                             topics):
    controller, running = await zmq_server(topics)
    node = running.node
    outpoint, value, script = max(node.unspent_outputs(), key=lambda u: u[1])
    tx = txmaker.payment([(outpoint, value, script)], random.Random(5), outputs=1)
    scripthash = scripthash_from_script(tx.outputs[0].script)
    wallet = await Wallet.connect(controller.sessions.ports[0].getHost().port)
    assert await wallet.call("blockchain.scripthash.subscribe", scripthash) is None
    await wallet.call("blockchain.headers.subscribe")
    node.send(tx.serialize())
    (hashed, status), secs = await wallet.notified("blockchain.scripthash.subscribe", 5)
    assert hashed == scripthash and status is not None
    assert secs < 1.5, secs                             # the poll would take up to 30 s
    history = await wallet.call("blockchain.scripthash.get_history", scripthash)
    assert [h["height"] for h in history] == [0]
    node.mine(1)
    ([header], secs) = await wallet.notified("blockchain.headers.subscribe", 5)
    assert header["height"] == node.height and secs < 1.5, secs
    (_hashed, status_mined), _secs = await wallet.notified("blockchain.scripthash.subscribe",
                                                           5)
    assert status_mined != status
    # /metrics counts what was heard.
    port = port_of(controller, "metrics")
    body = await readBody(await Agent(reactor).request(
        b"GET", f"http://127.0.0.1:{port}/metrics".encode()))
    assert b"electrumx_zmq_messages_total{topic=" in body
    assert b"electrumx_zmq_gaps_total 0" in body
