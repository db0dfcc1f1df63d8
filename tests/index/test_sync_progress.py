"""The indexer's account of itself: sync progress, and its ring of recent blocks."""

import pytest_twisted

from electrumx.chain.tx import read_varint
from electrumx.index.indexer import RECENT_BLOCKS
from tests.fixtures.regtest import wait_for


@pytest_twisted.ensureDeferred
async def test_progress_and_the_last_blocks_with_their_times(start_node, indexer_for):
    running = start_node(reveal=5)
    harness = indexer_for(running)
    await harness.caught_up()
    indexer = harness.indexer
    progress = indexer.sync_progress()
    assert (progress.height, progress.target, progress.percent) == (5, 5, 100.0)
    assert progress.eta_secs == 0 and progress.tx_per_sec > 0
    assert indexer.progress_line().startswith("height 5/5 (100.0%), ")
    synced = list(indexer.timings.recent_blocks)
    assert [b.height for b in synced] == [0, 1, 2, 3, 4, 5]
    # Flushed in one go while syncing: no flush time of their own.
    assert all(b.flush_and_notify_secs is None and b.applied_secs > 0 for b in synced)

    running.node.reveal(5 + 2 * RECENT_BLOCKS)
    await wait_for(lambda: harness.db.height == 5 + 2 * RECENT_BLOCKS)
    recent = list(indexer.timings.recent_blocks)
    assert [b.height for b in recent] == list(range(6 + RECENT_BLOCKS, 6 + 2 * RECENT_BLOCKS))
    assert recent[-1].block_hash == harness.db.tip
    assert [b.block_hash for b in recent] == harness.db.block_hashes(recent[0].height,
                                                                      RECENT_BLOCKS)
    # Once caught up, each block is flushed and announced on its own, and timed.
    assert all(b.flush_and_notify_secs is not None for b in recent)
    blocks = running.node.blocks
    assert [(b.tx_count, b.size) for b in recent] == [
        (read_varint(blocks[b.height], 80)[0], len(blocks[b.height])) for b in recent]
