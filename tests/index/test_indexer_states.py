"""The Indexer's life, step by step on a task.Clock: a real index in a temporary
directory, real blocks, and a fake node (tests.fixtures.fake_node) whose answers
come when the test lets the clock turn.

syncing -> caught_up; a node below the index is waited for (waiting_for_node)
and its return noticed; the node's error answers are retried (at the next poll,
or from our tip afresh when they came in a reorg's search), a refusal of our
credentials is fatal; a stop while a fetch is on the wire ends it all, and the
late answer changes nothing; the mempool is refreshed one refresh at a time.
"""

import pytest
from twisted.internet import task
from zope.interface.verify import verifyObject

from electrumx.coins import BitcoinRegtest
from electrumx.index.daemon import DaemonAuthError
from electrumx.index.db import IndexDB
from electrumx.index.indexer import Indexer
from electrumx.index.mempool import MemPool
from electrumx.interfaces import DaemonError, INodeClient
from tests.fixtures.blocks import ChainBuilder, coinbase, script_for
from tests.fixtures.fake_node import OUT_OF_RANGE, FakeNode, settle
from tests.fixtures.regtest import reference_digest

POLL_SECS = 1.0


def chain_of(count):
    """`count` blocks, each paying its coinbase to a script of its own."""
    chain = ChainBuilder()
    for height in range(count):
        chain.add_block([coinbase(height, [(50, script_for(height))])])
    return chain.blocks


class Run:
    """An Indexer over a real index in `path`, following a FakeNode on a Clock."""

    def __init__(self, path, blocks, tip=None, with_mempool=False):
        self.clock = task.Clock()
        self.node = FakeNode(self.clock, blocks, tip)
        assert verifyObject(INodeClient, self.node)
        self.db = IndexDB(str(path), BitcoinRegtest)
        self.fatal = []
        mempool = (MemPool(BitcoinRegtest, self.db, self.node, self.clock)
                   if with_mempool else None)
        self.indexer = Indexer(self.db, self.node, mempool, self.clock, cache_mb=1,
                               reorg_limit=10, block_poll_secs=POLL_SECS,
                               mempool_poll_secs=POLL_SECS, on_fatal=self.fatal.append)
        self.caught_up_at = []
        self.indexer.when_caught_up().addCallback(self.caught_up_at.append)
        self.states = []

    def start(self):
        self.indexer.startService()
        self.note_state()
        return self

    def turn(self, secs=0.0):
        """Let `secs` pass on the clock, then the node's answers, noting the states."""
        self.clock.advance(secs)
        self.note_state()
        settle(self.clock, self.note_state)

    def note_state(self):
        if not self.states or self.states[-1] != self.indexer.state:
            self.states.append(self.indexer.state)

    def stop(self):
        if self.indexer.running:
            self.indexer.stopService()
            settle(self.clock)


@pytest.fixture
def runs(tmp_path):
    made = []

    def run(blocks, tip=None, name="index", **kwargs):
        made.append(Run(tmp_path / name, blocks, tip, **kwargs))
        return made[-1]
    yield run
    for r in made:
        r.stop()


def test_it_syncs_then_catches_up_and_serves(runs, tmp_path):
    blocks = chain_of(12)
    run = runs(blocks).start()
    assert run.indexer.state == "starting" and not run.indexer.is_caught_up
    run.turn()
    assert run.states == ["starting", "syncing", "caught_up"]
    assert run.caught_up_at == [11] and run.db.height == 11
    assert run.indexer.is_caught_up and not run.indexer.node_behind
    assert run.db.digest() == reference_digest(tmp_path / "clean", blocks)
    run.turn(POLL_SECS)                     # a poll: nothing new
    assert run.indexer.state == "caught_up" and run.fatal == []


def test_a_block_after_the_catch_up_is_flushed_and_told_at_once(runs):
    blocks = chain_of(8)
    run = runs(blocks, tip=5).start()
    events = []
    run.indexer.add_listener(lambda touched, height: events.append(height))
    run.turn()
    assert run.caught_up_at == [5] and events == [5]
    run.node.tip = 7
    run.turn(POLL_SECS)
    assert run.db.height == 7 and events == [5, 6, 7]     # one event per block
    assert run.caught_up_at == [5]


def test_a_node_below_the_index_is_waited_for_then_followed_again(runs, log_lines):
    blocks = chain_of(10)
    first = runs(blocks).start()
    first.turn()
    first.stop()
    run = runs(blocks, tip=6).start()         # the node restarted without its last blocks
    run.turn()
    assert run.states == ["starting", "syncing", "waiting_for_node"]
    assert run.indexer.is_caught_up and run.indexer.node_behind
    assert run.caught_up_at == [9]            # served from the index meanwhile
    run.node.tip = 8
    run.turn(POLL_SECS)
    assert run.indexer.state == "waiting_for_node" and run.db.height == 9
    run.node.tip = 9
    run.turn(POLL_SECS)
    assert run.indexer.state == "caught_up" and not run.indexer.node_behind
    assert sum("below the index's 9" in line for line in log_lines) == 1
    assert sum("back at the index's height" in line for line in log_lines) == 1
    assert run.fatal == []


def test_a_node_error_while_fetching_is_retried_at_the_next_poll(runs, log_lines):
    blocks = chain_of(6)
    run = runs(blocks).start()
    run.node.fail_next("getblock", DaemonError(-1, "a node restarting"))
    run.turn()
    assert run.indexer.state == "syncing" and run.db.height == -1
    assert any("could not serve the blocks after height -1" in line for line in log_lines)
    run.turn(POLL_SECS)
    assert run.indexer.state == "caught_up" and run.db.height == 5
    assert any("serves blocks again" in line for line in log_lines)
    assert run.fatal == []


def test_a_node_refusing_our_credentials_while_fetching_is_fatal(runs):
    run = runs(chain_of(6)).start()
    run.node.fail_next("getblockcount", DaemonAuthError(401, "the node refused our "
                                                             "credentials"))
    run.turn()
    assert run.fatal == ["the node refused our credentials (code 401)"]
    asked = len(run.node.calls)
    run.turn(10 * POLL_SECS)
    assert len(run.node.calls) == asked           # no retry
    assert run.indexer.state == "syncing" and run.caught_up_at == []
    run.stop()
    assert run.indexer.state == "stopped" and run.fatal == ["the node refused our "
                                                            "credentials (code 401)"]


def test_a_refusal_when_looking_for_our_tip_is_fatal_where_an_error_means_behind(runs):
    blocks = chain_of(10)
    first = runs(blocks).start()
    first.turn()
    first.stop()
    run = runs(blocks, tip=6).start()
    run.node.fail_next("getblockheader", DaemonAuthError(403, "refused"))
    run.turn()
    assert run.fatal == ["refused (code 403)"]
    assert not run.indexer.node_behind and run.caught_up_at == []


def test_a_stop_while_a_fetch_is_on_the_wire_ends_it_all(runs, tmp_path):
    blocks = chain_of(6)
    run = runs(blocks).start()
    run.node.hold("getblock")
    run.turn()
    assert run.node.held and run.indexer.state == "syncing"
    run.stop()
    assert run.indexer.state == "stopped"
    run.node.release()                      # the blocks come after the stop
    run.turn(10 * POLL_SECS)
    assert run.fatal == [] and run.caught_up_at == []
    assert run.clock.getDelayedCalls() == []
    again = runs(blocks, name="index").start()      # the index closed cleanly
    again.turn()
    assert again.caught_up_at == [5]


def test_the_node_failing_a_reorg_s_search_is_asked_again(runs, tmp_path, log_lines):
    """The node reorganised; while the fork is searched for, it answers an error: the
    indexer fetches from its tip afresh, finds the reorg again and follows it."""
    ours = ChainBuilder()
    for height in range(10):
        ours.add_block([coinbase(height, [(50, script_for(height))])])
    run = runs(ours.blocks).start()
    run.turn()
    theirs = ours.fork(7)
    for height in range(8, 12):
        theirs.add_block([coinbase(height, [(50, script_for(100 + height))])], tag=1)
    run.node.blocks, run.node.tip = theirs.blocks, 11
    # The prefetcher's hashes of blocks 10 and 11 come first, then the fork search's.
    run.node.fail_next("getblockhash", DaemonError(-1, "a node restarting"), after=1)
    run.turn(POLL_SECS)
    assert sum("answers do not add up" in line for line in log_lines) == 1
    run.turn(POLL_SECS)
    assert (run.db.height, run.indexer.state, run.fatal) == (11, "caught_up", [])
    assert run.db.digest() == reference_digest(tmp_path / "clean", theirs.blocks)
    assert sum("answers add up again" in line for line in log_lines) == 1


def test_a_stop_before_the_start_closes_what_there_is(runs):
    run = runs(chain_of(3))
    run.indexer.stopService()                   # as a tree whose start failed part-way
    assert run.indexer.state == "stopped" and run.node.calls == []


def test_a_stop_when_caught_up_stops_its_timers(runs):
    run = runs(chain_of(4)).start()
    run.turn()
    assert run.indexer.state == "caught_up"
    assert run.clock.getDelayedCalls()          # the next poll
    run.stop()
    assert run.indexer.state == "stopped" and run.clock.getDelayedCalls() == []
    run.indexer.stopService()                   # a second stop changes nothing
    assert run.indexer.state == "stopped"


def test_the_node_out_of_range_during_a_fetch_is_an_error_answer(runs):
    """A node that lost blocks between its height and the hashes asked for."""
    blocks = chain_of(8)
    run = runs(blocks).start()
    run.node.fail_next("getblockhash", DaemonError(OUT_OF_RANGE, "Block height out of "
                                                                 "range"))
    run.turn()
    assert run.indexer.state == "syncing"
    run.turn(POLL_SECS)
    assert run.indexer.state == "caught_up" and run.db.height == 7 and run.fatal == []



def test_the_mempool_is_refreshed_once_caught_up_one_refresh_at_a_time(runs):
    run = runs(chain_of(8), tip=5, with_mempool=True).start()
    told_at = {}
    run.indexer.add_listener(lambda touched, height: told_at.setdefault(height,
                                                                         run.clock.seconds()))

    def refreshes(since=0.0):
        return [t for method, t in zip(run.node.calls, run.node.times)
                if method == "getrawmempool" and t >= since]

    def about(t):
        return pytest.approx(t, abs=0.01)

    run.turn()
    caught_up = told_at[5]
    assert refreshes() == [about(caught_up)]                    # at once
    run.turn(POLL_SECS)
    assert refreshes() == [about(caught_up), about(caught_up + POLL_SECS)]
    run.node.hold("getrawmempool")
    run.turn(2 * POLL_SECS)
    assert len(refreshes()) == 3            # the next tick waits for the one under way
    run.node.release()
    run.node.tip = 6
    run.turn(POLL_SECS)                     # the prefetcher's poll finds the block
    run.turn(POLL_SECS)
    applied = told_at[6]
    assert refreshes(applied)[:2] == [about(applied), about(applied + POLL_SECS)]
    run.stop()
    count = len(refreshes())
    run.turn(10 * POLL_SECS)
    assert len(refreshes()) == count and run.fatal == []
