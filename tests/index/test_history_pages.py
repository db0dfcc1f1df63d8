"""Paged confirmed history (`from_height <= height < to_height`, Fulcrum's semantics) over
real LevelDB files: a script with 20,202 transactions, its rows split at flush points
that pages cross, every kind of boundary, and a page costing its rows, not the history's."""

import orjson
import pytest

from electrumx.index.read_api import ChainReader
from tests.fixtures.blocks import ChainBuilder, coinbase, script_for, spend
from tests.index.test_block_processor import hx, index
from tests.index.test_block_processor import close_databases  # noqa: F401 (autouse fixture)

TIP = 112
PER_BLOCK = 200
GAP = range(50, 60)
"""Blocks whose transactions pay script 3: script 1's history skips them (but block 50's
first, which spends script 1's last output)."""


@pytest.fixture(scope="module")
def busy_chain():
    """Block 0; block 1 pays script 1; blocks 2..TIP each hold a coinbase to script 2
    and PER_BLOCK transactions in a chain, each spending the one before it and paying
    script 1 (script 3 in the GAP)."""
    chain = ChainBuilder()
    chain.add_block([coinbase(0, [(50, script_for(0))])])
    prev = coinbase(1, [(10**9, script_for(1))])
    chain.add_block([prev])
    value = 10**9
    for height in range(2, TIP + 1):
        txs = [coinbase(height, [(50, script_for(2))])]
        payee = script_for(3 if height in GAP else 1)
        for _ in range(PER_BLOCK):
            value -= 1
            prev = spend([(prev.txid, 0)], [(value, payee)])
            txs.append(prev)
        chain.add_block(txs)
    return chain


class CountingDB:
    """The LevelDB handle, counting the rows its iterators hand out."""

    def __init__(self, real):
        self.real = real
        self.rows = 0

    def iterator(self, **kwargs):
        for item in self.real.iterator(**kwargs):
            self.rows += 1
            yield item

    def __getattr__(self, name):
        return getattr(self.real, name)


def page(reader, limit, from_height=0, to_height=None):
    """[(tx_hash hex, height)] of a page, checking the count against the JSON."""
    count, text = reader.confirmed_history_json(hx(1), limit, from_height, to_height)
    entries = orjson.loads(b"[" + text + b"]")
    assert count == len(entries)
    return [(e["tx_hash"], e["height"]) for e in entries]


@pytest.mark.parametrize("flush_every", [1, 7, 1000])
def test_pages_are_the_history_cut_at_heights(tmp_path, busy_chain, flush_every):
    """flush_every 7 puts 1,400 entries in a row, so pages start and end inside rows;
    1000 puts the whole history in one row."""
    db, _bp = index(tmp_path, busy_chain.blocks, flush_every=flush_every)
    reader = ChainReader(db, None, None)
    whole = page(reader, 10**6)
    assert len(whole) == 1 + 48 * PER_BLOCK + 1 + (TIP - 59) * PER_BLOCK == 20_202
    heights = {height for _txid, height in whole}
    bounds = [0, 1, 2, 3, 8, 9, 10, 49, 50, 51, 55, 59, 60, 61, 100, TIP - 1, TIP, TIP + 1,
              TIP + 50]
    for start in bounds:
        for stop in [None] + bounds:
            want = [e for e in whole if start <= e[1] and (stop is None or e[1] < stop)]
            if len(want) <= 2 * PER_BLOCK:      # long pages cost time (joined below)
                assert page(reader, 10**6, start, stop) == want, (start, stop)
            assert page(reader, 7, start, stop) == want[:7], (start, stop)
    assert heights.isdisjoint(range(51, 60))
    assert page(reader, 10, 52, 58) == []
    assert page(reader, 10, 60, 60) == []
    assert page(reader, 10, 70, 60) == []
    assert page(reader, 0, 60, 61) == []
    # The pages joined are the whole history, whatever their size (and the long pages'
    # ends are checked here).
    for size in (1, 13, 40):
        joined, start = [], 0
        while start <= TIP:
            joined += page(reader, 10**6, start, start + size)
            start += size
        assert joined == whole


def test_a_page_reads_the_rows_that_hold_it(tmp_path, busy_chain):
    """Rows of 1,400 entries: a page inside one row reads at most two rows (the one
    before the page's first tx_num, found backwards, and the one read on), however
    long the history; the whole history reads them all."""
    db, _bp = index(tmp_path, busy_chain.blocks, flush_every=7)
    reader = ChainReader(db, None, None)
    counting = CountingDB(db._db)
    db._db = counting
    try:
        assert len(page(reader, 20, 90, 91)) == 20
        assert counting.rows <= 3
        counting.rows = 0
        assert len(page(reader, 10**6, 100)) == (TIP - 99) * PER_BLOCK
        assert counting.rows <= 4
        counting.rows = 0
        page(reader, 10**6)
        assert counting.rows >= TIP // 7
    finally:
        db._db = counting.real


def test_the_whole_history_keeps_its_json_cache_and_pages_do_not(tmp_path, busy_chain):
    db, _bp = index(tmp_path, busy_chain.blocks, flush_every=1000)
    reader = ChainReader(db, None, None)
    whole = reader.confirmed_history_json(hx(1), 10**6)
    assert reader.confirmed_history_json(hx(1), 10**6) is whole
    first = reader.confirmed_history_json(hx(1), 10**6, 60, 61)
    assert reader.confirmed_history_json(hx(1), 10**6, 60, 61) == first
    assert reader.confirmed_history_json(hx(1), 10**6, 60, 61) is not first
    assert reader.confirmed_history_json(hx(1), 10**6, 0, None) is whole
    # At most `limit` entries: a count of `limit` means "too long".
    assert reader.confirmed_history_json(hx(1), 100, 2)[0] == 100
