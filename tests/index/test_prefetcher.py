"""The prefetcher: how many blocks it asks for at once (bounded in bytes, growing
slowly), and its life against a fake node on a Clock: fetching, sleeping until the
poll or a poke, a reset's stale answer dropped, errors retried, a refusal fatal, stop."""

from twisted.internet.task import Clock

from electrumx.index.daemon import DaemonAuthError
from electrumx.index.prefetcher import Prefetcher
from electrumx.interfaces import DaemonError
from tests.fixtures.fake_node import FakeNode, settle
from tests.index.test_indexer_states import POLL_SECS, chain_of


def prefetcher(budget=32_000_000):
    return Prefetcher(daemon=None, clock=Clock(), budget_bytes=budget, poll_interval=1.0)


def test_the_first_batch_is_a_small_probe():
    assert prefetcher()._batch_count(room=32_000_000, missing=5_000) == Prefetcher.PROBE_BATCH


def test_a_batch_at_most_doubles_when_early_blocks_were_small():
    """Sized from tiny early blocks alone, the next request could be for far
    more bytes than BATCH_BYTES once blocks grow; doubling bounds the surprise."""
    p = prefetcher()
    p.block_size, p.last_count = 1_000, 10
    assert p._batch_count(room=32_000_000, missing=5_000) == 20


def test_a_batch_is_sized_by_the_last_batchs_largest_block():
    """Blocks grow along a chain: by the average of a batch that ended in big blocks, the
    next request would be for several times BATCH_BYTES, parsed in one reactor turn."""
    p = prefetcher()
    p._queue([b"x" * 2_000] * 9 + [b"x" * 500_000])
    assert p._batch_count(room=32_000_000, missing=5_000) == Prefetcher.BATCH_BYTES // 500_000


def test_a_batch_holds_about_batch_bytes_and_fits_the_room():
    p = prefetcher()
    p.block_size, p.last_count = 1_000_000, 400
    assert p._batch_count(room=32_000_000, missing=5_000) == Prefetcher.BATCH_BYTES // 1_000_000
    assert p._batch_count(room=2_500_000, missing=5_000) == 2
    assert p._batch_count(room=10, missing=5_000) == 1
    p.block_size = 100_000
    assert p._batch_count(room=32_000_000, missing=3) == 3


# ---- its life, against a fake node on a Clock ------------------------------------------

def following(count, tip=None, budget=32_000_000):
    """A Prefetcher of a FakeNode's chain of `count` blocks, started from nothing."""
    clock = Clock()
    node = FakeNode(clock, chain_of(count), tip)
    p = Prefetcher(node, clock, budget_bytes=budget, poll_interval=POLL_SECS)
    return p, node, clock, p.start(-1)


def test_it_fetches_until_the_node_has_no_more_then_polls():
    p, node, clock, _done = following(30)
    settle(clock)
    asked = len(node.calls)
    first, blocks = p.take_blocks()
    assert (first, len(blocks), p.daemon_height) == (0, 30, 29)
    settle(clock)
    assert len(node.calls) == asked + 1       # the room made is looked at once: no more
    clock.advance(POLL_SECS / 2)
    assert len(node.calls) == asked + 1       # sleeping until the poll
    clock.advance(POLL_SECS / 2)
    settle(clock)
    assert node.calls[asked + 1:] == ["getblockcount"]


def test_a_full_queue_waits_for_the_consumer_not_the_poll():
    p, node, clock, _done = following(40, budget=3 * len(chain_of(1)[0]))
    settle(clock)
    assert 0 < len(p.blocks) < 40               # the budget is full
    p.take_blocks()
    settle(clock)                               # no poll interval passed
    assert p.blocks                             # the room made is filled at once


def test_a_poke_looks_at_once():
    p, node, clock, _done = following(10, tip=4)
    settle(clock)
    node.tip = 9
    p.poke()                                    # a block was announced
    settle(clock)
    assert p.fetched_height == 9


def test_a_reset_while_a_fetch_is_on_the_wire_drops_its_answer():
    p, node, clock, _done = following(10, tip=4)
    settle(clock)
    p.take_blocks()
    settle(clock)
    node.tip = 9
    node.hold("getblock")
    clock.advance(POLL_SECS)
    settle(clock)
    assert node.held                            # blocks 5.. on the wire
    p.reset(2)                                  # a reorg: fetch again after height 2
    node.release()
    settle(clock)
    first, blocks = p.take_blocks()
    assert first == 3 and blocks == node.blocks[3:10]


def test_a_node_error_is_asked_again_at_the_next_poll():
    p, node, clock, done = following(6)
    node.fail_next("getblock", DaemonError(-1, "a node restarting"))
    settle(clock)
    assert p.blocks == [] and not done.called
    clock.advance(POLL_SECS)
    settle(clock)
    assert len(p.blocks) == 6


def test_a_refusal_of_our_credentials_ends_the_fetching():
    p, node, clock, done = following(6)
    node.fail_next("getblockcount", DaemonAuthError(401, "refused"))
    failures = []
    done.addErrback(failures.append)
    settle(clock)
    assert [f.value.code for f in failures] == [401]
    asked = len(node.calls)
    p.poke()
    clock.advance(10 * POLL_SECS)
    assert len(node.calls) == asked and clock.getDelayedCalls() == []


def test_a_stop_cancels_the_poll_and_lets_the_consumer_go():
    p, node, clock, done = following(3)
    settle(clock)
    p.take_blocks()
    settle(clock)
    waiting = p.wait_for_blocks()
    assert clock.getDelayedCalls() and not waiting.called      # the next poll
    p.stop()
    assert clock.getDelayedCalls() == [] and waiting.called and done.called
    p.poke()
    p.reset(0)
    assert clock.getDelayedCalls() == []


def test_an_answer_after_the_stop_is_dropped():
    p, node, clock, _done = following(3)
    node.hold("getblock")
    settle(clock)
    p.stop()
    node.release()
    settle(clock)
    assert p.blocks == [] and clock.getDelayedCalls() == []
