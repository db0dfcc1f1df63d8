"""Embedding the node: start_regtest_node and RegtestNodeService in a process's reactor."""

import pytest
import pytest_twisted
from twisted.application import service
from twisted.internet import reactor

from electrumx.regtest.service import RegtestNodeService, start_regtest_node
from electrumx.regtest.node import RegtestNode
from tests.fixtures.regtest import NodeClient, tiny_chain, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


@pytest_twisted.ensureDeferred
async def test_start_regtest_node_serves_a_generated_chain(tmp_path_factory):
    chain = tiny_chain(tmp_path_factory)
    running = await start_regtest_node(reactor, chain, "127.0.0.1", 0, "alice", "s3cret",
                                       reveal_height=7)
    try:
        assert running.port_number > 0 and running.url.startswith("http://alice:s3cret@")
        assert "s3cret" not in running.redacted_url
        assert await NodeClient(running).result("getblockcount") == 7
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_busy_port_fails_the_deferred(tmp_path_factory):
    chain = tiny_chain(tmp_path_factory)
    first = await start_regtest_node(reactor, RegtestNode(chain.blocks))
    try:
        with pytest.raises(Exception, match="[Aa]ddress already in use"):
            await start_regtest_node(reactor, chain, port=first.port_number)
    finally:
        await first.stop()


@pytest_twisted.ensureDeferred
async def test_the_service_makes_blocks_arrive_over_time(tmp_path_factory):
    chain = tiny_chain(tmp_path_factory)
    node = RegtestNode(chain.blocks, len(chain.blocks) - 2, reactor)
    seen = []
    top = service.MultiService()
    RegtestNodeService(reactor, node, "127.0.0.1", 0, "u", "p", on_listening=seen.append,
                       reveal_interval=0.02).setServiceParent(top)
    top.startService()
    try:
        [running] = seen
        await wait_for(lambda: node.height >= len(chain.blocks))    # revealed, then mined
        assert await NodeClient(running).result("getblockcount") >= len(chain.blocks)
    finally:
        await top.stopService()
