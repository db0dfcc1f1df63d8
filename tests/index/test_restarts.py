"""Restarts of the built-in node: the README's demo run twice, and the node restarted
under a running indexer.  Both must go on from the index.

The demo's node keeps the blocks it mined beside the index, so the demo run
again goes on from both at once.  The stand-alone node starts from its
generated chain each time, so after a restart the index is ahead of it by
the blocks the node had made: the server serves from its index, waits for
the node, and goes on past it.  Real processes: `twistd -n electrumx --demo`
(blocks every DEMO_BLOCK_INTERVAL ms instead of every 30 s) and
`twistd -n electrumx-regtest --block-interval`.
"""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import endpoints, reactor

from electrumx.config import SETTINGS
from tests.admin.test_rpc import AdminClient
from tests.fixtures.host import free_port
from tests.fixtures.regtest import NodeClient, reference_digest, wait_for
from tests.index.test_crash_safety import stop, wait_for_log
from tests.protocol.test_transport import connect

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
GENERATED_HEIGHT = 120
"""The height of the demo's generated chain, where its node starts the first time."""
AHEAD = 8
"""Blocks the first run's index gets ahead of the generated chain."""


def demo(tmp_path, ports, log_path, block_interval_ms):
    environ = {k: v for k, v in os.environ.items() if k not in {s.name for s in SETTINGS}}
    env = dict(environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"),
               DB_DIRECTORY=str(tmp_path / "db"), DEMO_BLOCK_INTERVAL=str(block_interval_ms),
               SERVICES="tcp://127.0.0.1:{},rpc://127.0.0.1:{}".format(*ports))
    return subprocess.Popen(TWISTD + ["-n", "--pidfile=", "electrumx", "--demo"],
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env,
                            cwd=str(tmp_path))


def stopped_cleanly(proc, log_path):
    """twistd, stopped by SIGTERM, shuts down and then dies of that signal."""
    log = log_path.read_text()
    assert proc.returncode in (0, -signal.SIGTERM), log[-3000:]
    assert "Server Shut Down." in log and "critical" not in log, log[-3000:]
    return True


async def ask(client, method, *params):
    client.send({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    return (await client.reply())["result"]


@pytest_twisted.ensureDeferred
async def test_the_demo_run_twice_goes_on_from_its_index(tmp_path):
    ports = free_port(), free_port()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = demo(tmp_path, ports, first_log, block_interval_ms=50)
    await wait_for_log(first, first_log, f"block {GENERATED_HEIGHT + AHEAD} ", timeout=60)
    await stop(first)
    assert stopped_cleanly(first, first_log)

    second = demo(tmp_path, ports, second_log, block_interval_ms=1000)
    try:
        await wait_for_log(second, second_log, "caught up to height", timeout=60)
        await wait_for_log(second, second_log, "serving tcp on", timeout=60)
        log = second_log.read_text()
        height = int(re.search(r"caught up to height (\d+)", log)[1])
        node_height = int(re.search(r"regtest node at height (\d+)", log)[1])
        # The node goes on from the blocks it kept, at least as far as the index.
        assert node_height >= height >= GENERATED_HEIGHT + AHEAD
        wallet = await connect(ports[0])
        await ask(wallet, "server.version", "test", "1.4")
        assert (await ask(wallet, "blockchain.headers.subscribe"))["height"] >= height
        admin = AdminClient()
        await endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", ports[1]), admin)
        info = await ask(admin, "getinfo")
        assert info["daemon_behind"] is False and info["caught_up"] is True
        await wait_for_log(second, second_log, f"block {node_height + 1} ", timeout=60)
        log = second_log.read_text()
        assert "below the index's" not in log and "reorganisation" not in log
        for client in (wallet, admin):
            client.transport.loseConnection()
    finally:
        await stop(second)
    assert stopped_cleanly(second, second_log)


class StandaloneNode:
    """`twistd -n electrumx-regtest` on a fixed port: what the harness and NodeClient need."""

    user = password = "regtest"

    def __init__(self, tmp_path):
        self.port_number = free_port()
        self.url = f"http://regtest:regtest@127.0.0.1:{self.port_number}/"
        self.args = TWISTD + ["-n", "--pidfile=", "electrumx-regtest", "--size", "tiny",
                              "--port", str(self.port_number),
                              "--cache-dir", str(tmp_path / "cache")]
        self.tmp_path = tmp_path
        self.starts = 0
        self.proc = None

    async def start(self, *args):
        self.starts += 1
        log_path = self.tmp_path / f"node-{self.starts}.log"
        self.proc = subprocess.Popen(self.args + list(args), stdout=open(log_path, "w"),
                                     stderr=subprocess.STDOUT, cwd=str(self.tmp_path),
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
        await wait_for_log(self.proc, log_path, "serving on", timeout=60)

    async def height(self):
        return await NodeClient(self).result("getblockcount")

    async def blocks(self):
        """The node's chain, raw blocks from genesis to its tip."""
        rpc = NodeClient(self)
        hashes = [await rpc.result("getblockhash", h) for h in range(await self.height() + 1)]
        return [bytes.fromhex(await rpc.result("getblock", h, 0)) for h in hashes]


@pytest_twisted.ensureDeferred
async def test_the_node_restarted_under_a_running_indexer(indexer_for, tmp_path):
    node = StandaloneNode(tmp_path)
    await node.start("--block-interval", "0.05")
    # At least the generated chain: a block may be revealed before the node is asked.
    first_seen = await node.height()
    harness = indexer_for(node)
    try:
        await harness.caught_up()
        await wait_for(lambda: harness.db.height >= first_seen + 5)
        await stop(node.proc)
        await node.start()                  # back at the generated chain, no new blocks
        ahead = harness.db.height
        generated = await node.height()
        assert generated <= first_seen < ahead
        await wait_for(lambda: harness.fatal or harness.indexer.node_behind)
        assert harness.fatal == [] and harness.db.height == ahead
        # It makes the same blocks again (mined from an empty mempool), then more.
        await NodeClient(node).result("regtest_mine", ahead - generated + 2)
        await wait_for(lambda: harness.db.height == ahead + 2)
        await wait_for(lambda: not harness.indexer.node_behind)
        await harness.stop()
        assert harness.fatal == []
        blocks = (await node.blocks())[:harness.db.height + 1]
        harness.db.open()
        try:
            assert harness.db.digest() == reference_digest(tmp_path / "clean", blocks)
        finally:
            harness.db.close()
    finally:
        await stop(node.proc)
