"""Node faults: the server stays up, and ends with exactly the index of a clean sync.

The real Indexer follows the built-in regtest node over the real HTTP node
client on 127.0.0.1 while the node fails the ways real ones do: it answers
garbage, plain HTTP 500, refuses connections, answers late or warms up; it
restarts without its last blocks, reindexes from genesis, restarts between
two calls; it dies with a lagging second node behind it; two nodes are on
different branches.  In every case nothing reaches on_fatal, and at the end
the index's digest is that of a clean index of the node's final chain.
"""

import re
import tempfile

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from electrumx.chain.script import p2pkh_script
from tests.fixtures.regtest import reference_digest, tiny_chain, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

OTHER_MINER = p2pkh_script(bytes([7]) * 20)
"""Pays the coinbases of a second node's own blocks, so that its branch differs."""


async def sleep(seconds):
    await task.deferLater(reactor, seconds, lambda: None)


async def ends_as_a_clean_sync(harness, running, tmp_path):
    """Wait for the index to reach the node's tip; it must equal a clean index of that chain."""
    chain = running.node
    await wait_for(lambda: (harness.db.height, harness.db.tip) == (chain.height,
                                                                     chain.tip_hash))
    assert harness.fatal == []
    clean = tempfile.mkdtemp(dir=tmp_path, prefix="clean-")
    assert harness.db.digest() == reference_digest(clean, chain.blocks[:chain.height + 1])


async def waits_for_the_node(harness):
    """Wait until the indexer serves from its index and waits for the node, not stops."""
    await wait_for(lambda: harness.fatal or harness.indexer.node_behind)
    assert harness.fatal == []


def outage_log(lines):
    """The daemon's outage lines in order, as "start", "reminder" and "end" words."""
    kinds = []
    for line in lines:
        if "answering again" in line:
            kinds.append("end")
        elif "unavailable" in line:
            kinds.append("reminder" if " now)" in line else "start")
    return " ".join(kinds)


def count(lines, text):
    return sum(text in line for line in lines)


# ---- the node unavailable ----------------------------------------------------------

@pytest.mark.parametrize("mode", ["corrupt", "misshapen", "http500", "refuse", "slow",
                                  "warmup"])
@pytest_twisted.ensureDeferred
async def test_an_outage_is_waited_out_and_logged_as_it_starts_lasts_and_ends(
        mode, start_node, indexer_for, tmp_path, log_lines):
    node = start_node(reveal=10)
    harness = indexer_for(node, daemon_timeout=0.3)
    harness.daemon.outage.reminder_secs = 0.2
    assert await harness.caught_up() == 10
    await node.fail(mode, seconds=3600, delay=2.0)
    node.node.reveal(20)                            # blocks arrive during the outage
    await wait_for(lambda: "reminder reminder" in outage_log(log_lines))
    assert harness.db.height == 10 and harness.indexer.is_caught_up
    await node.fail(None)
    node.node.reveal(len(node.node.blocks) - 1)
    await ends_as_a_clean_sync(harness, node, tmp_path)
    await wait_for(lambda: outage_log(log_lines).endswith("end"))
    # One line as each outage starts, reminders while it lasts, one as it ends.  (A reply
    # sent just before the switch may still come after the first failure: two outages.)
    assert re.fullmatch(r"(start( reminder)* end ?)+", outage_log(log_lines))
    assert count(log_lines, "Traceback") == 0


# ---- the node behind our tip ----------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_node_restarting_behind_our_tip_is_waited_for(
        start_node, indexer_for, node_client, tmp_path, log_lines):
    node = start_node(reveal=25)
    harness = indexer_for(node)
    assert await harness.caught_up() == 25
    await node.fail("refuse", seconds=0.2)                  # it restarts...
    await wait_for(lambda: node._port is not None)
    assert await node_client(node).result("regtest_rewind", 22) == 22   # ...3 blocks short
    await waits_for_the_node(harness)
    node.node.reveal(24)
    await sleep(0.2)
    assert harness.indexer.node_behind and harness.db.height == 25
    node.node.reveal(len(node.node.blocks) - 1)
    await ends_as_a_clean_sync(harness, node, tmp_path)
    await wait_for(lambda: not harness.indexer.node_behind)
    assert count(log_lines, "below the index's 25") == 1
    assert count(log_lines, "back at the index's height") == 1


@pytest_twisted.ensureDeferred
async def test_the_server_starts_and_serves_from_its_index_while_the_node_is_behind(
        start_node, indexer_for, tmp_path):
    node = start_node(reveal=25)
    first = indexer_for(node)
    await first.caught_up()
    await first.stop()
    node.node.rewind(20)                    # a restarted node, as the demo's is
    second = indexer_for(node)              # the same index directory
    assert await second.caught_up() == 25
    assert second.indexer.node_behind and second.fatal == []
    node.node.reveal(len(node.node.blocks) - 1)
    await ends_as_a_clean_sync(second, node, tmp_path)


@pytest_twisted.ensureDeferred
async def test_a_node_reindexing_from_genesis_is_waited_for(start_node, indexer_for,
                                                            tmp_path):
    node = start_node(reveal=25)
    harness = indexer_for(node)
    await harness.caught_up()
    await node.fail("refuse", seconds=0.1)
    node.node.rewind(0)
    await waits_for_the_node(harness)
    seen = len(harness.events)
    for height in range(0, len(node.node.blocks), 3):        # it climbs back
        node.node.reveal(height)
        await sleep(0.03)
    node.node.reveal(len(node.node.blocks) - 1)
    await ends_as_a_clean_sync(harness, node, tmp_path)
    assert min(height for _touched, height in harness.events[seen:]) >= 25


@pytest_twisted.ensureDeferred
async def test_a_node_restarting_between_two_calls(start_node, indexer_for, tmp_path,
                                                   log_lines):
    """It tells its height, then loses blocks before the prefetcher asks for them."""
    node = start_node(reveal=20)
    harness = indexer_for(node)
    await harness.caught_up()
    methods = node.resource.methods
    block_count = methods["getblockcount"]

    def block_count_then_restart():
        height = block_count()
        if height == 25:
            methods["getblockcount"] = block_count
            node.node.rewind(18)
        return height

    methods["getblockcount"] = block_count_then_restart
    node.node.reveal(25)
    await wait_for(lambda: methods["getblockcount"] is block_count)
    node.node.reveal(len(node.node.blocks) - 1)
    await ends_as_a_clean_sync(harness, node, tmp_path)
    assert count(log_lines, "could not serve the blocks after height 20") == 1
    assert count(log_lines, "serves blocks again") == 1


@pytest_twisted.ensureDeferred
async def test_a_node_restarting_in_the_middle_of_a_reorg(start_node, indexer_for, tmp_path,
                                                          log_lines):
    """The node reorganised at our height; while the fork is searched for, it restarts."""
    node = start_node(reveal=25)
    harness = indexer_for(node)
    await harness.caught_up()
    methods = node.resource.methods
    block_hash = methods["getblockhash"]
    asked = []

    def block_hash_then_restart(height):
        if height == 25 and harness.db.tip != node.node.tip_hash:
            asked.append(height)
            if len(asked) == 2:                 # the fork search, after the tip check
                methods["getblockhash"] = block_hash
                node.node.rewind(10)
        return block_hash(height)

    methods["getblockhash"] = block_hash_then_restart
    node.node.reorg(2, new_blocks=2)                   # the same height, another tip
    await wait_for(lambda: len(asked) == 2)
    node.node.reveal(len(node.node.blocks) - 1)
    await ends_as_a_clean_sync(harness, node, tmp_path)
    assert count(log_lines, "answers do not add up") == 1
    assert count(log_lines, "answers add up again") == 1


# ---- failover ----------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_failover_from_a_dead_node_to_a_lagging_one(start_node, indexer_for, tmp_path):
    first = start_node(reveal=25)
    second = start_node(reveal=21)
    harness = indexer_for(first, second)
    assert await harness.caught_up() == 25
    await first.stop()                                  # dies for good
    await waits_for_the_node(harness)
    assert harness.daemon.current_url.port == second.port_number
    assert harness.db.height == 25
    second.node.reveal(len(second.node.blocks) - 1)
    await ends_as_a_clean_sync(harness, second, tmp_path)


@pytest_twisted.ensureDeferred
async def test_failover_between_nodes_on_different_branches(
        start_node, indexer_for, tmp_path, tmp_path_factory):
    blocks, _expected = tiny_chain(tmp_path_factory)
    first = start_node(blocks=blocks, reveal=25)
    second = start_node(blocks=blocks[:23])             # shares blocks 0 to 22 ...
    second.node.mine(2, OTHER_MINER)                    # ... then has its own, to 24
    harness = indexer_for(first, second)
    assert await harness.caught_up() == 25
    # The first dies: the second is below our height and never saw our tip.
    await first.fail("refuse", seconds=3600)
    await waits_for_the_node(harness)
    assert harness.db.height == 25
    second.node.mine(1, OTHER_MINER)            # at our height, another block there
    await ends_as_a_clean_sync(harness, second, tmp_path)
    # Back to the first, at our height on the other branch; then it moves on.
    await first.fail(None)
    await second.fail("refuse", seconds=3600)
    await ends_as_a_clean_sync(harness, first, tmp_path)
    first.node.reveal(len(blocks) - 1)
    await ends_as_a_clean_sync(harness, first, tmp_path)
    assert harness.daemon.current_url.port == first.port_number


# ---- waiting for the catch-up ----------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_each_caught_up_waiter_gets_the_height_whatever_the_others_do(
        start_node, indexer_for):
    node = start_node(reveal=10)
    harness = indexer_for(node)
    failing = harness.indexer.when_caught_up()
    failing.addCallback(lambda height: 1 / 0)
    failing.addErrback(lambda failure: failure.trap(ZeroDivisionError))
    chained = harness.indexer.when_caught_up()
    chained.addCallback(lambda height: "something else")
    early = harness.indexer.when_caught_up()
    assert await harness.caught_up() == 10
    assert await early == 10
    late = harness.indexer.when_caught_up()
    assert late.called and await late == 10
