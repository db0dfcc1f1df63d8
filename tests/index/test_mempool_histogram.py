"""The compact fee histogram (REFERENCE §1.9), by hand, and how often MemPool recomputes it."""

import pytest
import pytest_twisted

from electrumx.coins import BitcoinRegtest
from electrumx.index.mempool_histogram import compact_fee_histogram, fee_rate_histogram
from tests.fixtures.blocks import script_for, spend
from tests.index.test_mempool import World


def test_rates_are_floored_to_a_tenth():
    assert fee_rate_histogram([(23_999, 1200), (20_000, 1000), (7, 10), (1, 3)]) == {
        19.9: 1200, 20.0: 1000, 0.7: 10, 0.3: 3}


def test_compaction_by_hand():
    # (fee, vsize) -> rate: 50.0, 40.9 (40.98 floored), 30.0, 20.0, 19.9 (19.999
    # floored), 5.0, 1.0.  Walking down with a bin size of 1000:
    #   50.0 + 40.9 = 1100 > 1000       -> [40.9, 1100], bin 1100
    #   30.0: 300
    #   20.0 is a lump of 2500 > 2*1100 -> flush [30.0, 300], bin 1210;
    #        then 2500 > 1210           -> [20.0, 2500], bin 1331
    #   19.9: 1200, not > 1331 (it would be > 1000 without the 10% growths)
    #   5.0: 1200 + 700 = 1900 > 1331   -> [5.0, 1900], bin 1464.1
    #   1.0: 100, a last partial bin: left out
    txs = [(30_000, 600), (20_490, 500), (9_000, 300), (50_000, 2500), (23_999, 1200),
           (3_500, 700), (100, 100)]
    assert compact_fee_histogram(txs, 1000) == [
        [40.9, 1100], [30.0, 300], [20.0, 2500], [5.0, 1900]]


@pytest.mark.parametrize("txs, expected", [
    ([], []),
    ([(1000, 100)], []),                                # one partial bin
    ([(300_000, 3000)], [[100.0, 3000]]),               # a first lump flushes nothing
    ([(1000, 600), (1000, 600)], [[1.6, 1200]]),        # equal rates share a bin
])
def test_compaction_edges(txs, expected):
    assert compact_fee_histogram(txs, 1000) == expected


class SmallBins(BitcoinRegtest):
    MEMPOOL_HISTOGRAM_BIN_SIZE = 50


@pytest.fixture
def world(tmp_path):
    world = World(tmp_path, coin=SmallBins)
    yield world
    world.close()


@pytest_twisted.ensureDeferred
async def test_the_mempool_recomputes_its_histogram_at_most_every_refresh_period(world):
    mempool, node, funding, clock = world.mempool, world.node, world.funding, world.clock
    first = spend([(funding.txid, 0)], [(1000 - 10 * 95, script_for(4))])     # 10 sat/vB
    second = spend([(funding.txid, 1)], [(2000 - 2 * 95, script_for(5))])     # 2 sat/vB
    assert first.vsize == second.vsize == 95
    assert mempool.fee_histogram() == []                # not cached before a listing
    node.add(first)
    await mempool.refresh()
    assert mempool.fee_histogram() == [[10.0, 95]]
    node.add(second)
    await mempool.refresh()
    clock.advance(SmallBins.MEMPOOL_HISTOGRAM_REFRESH_SECS - 1)
    assert mempool.fee_histogram() == [[10.0, 95]]      # cached
    clock.advance(1)
    assert mempool.fee_histogram() == [[10.0, 95], [2.0, 95]]
