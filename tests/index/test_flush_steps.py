"""A flush in steps: the bulk written ahead in chunks, invisible until its small commit,
and taken back out when a crash (kill -9) comes between.  A block applied in steps:
finished by any flush, never flushed half-applied."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest
import pytest_twisted
from twisted.internet import task

from electrumx.index import layout as L
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.db import ChainError, FlushError
from tests.fixtures.blocks import build_chain, coinbase, script_for, spend
from tests.index.test_block_processor import hx, index, open_db
from tests.index.test_indexer_regtest import answers_match
from tests.fixtures.regtest import tiny_chain

ROOT = Path(__file__).resolve().parents[2]


def steps_before_commit(bp):
    """How many steps a stepped flush takes before its commit: chunks of new rows, then
    chunks of the deletions of outputs spent from the database."""
    rows = sum(1 for _ in bp._rows_ahead())
    spends = len(bp.db_spends) // L.DB_SPEND.size
    return -(-rows // bp.FLUSH_CHUNK_ROWS) + -(-spends // (bp.FLUSH_CHUNK_ROWS // 2))


def write_ahead_all(bp):
    """Run a stepped flush up to, not including, its commit; return the steps left."""
    assert bp.db_spends                         # the deletions are written ahead too
    steps = bp.flush_steps(first_sync=True)
    for _ in range(steps_before_commit(bp)):
        next(steps)
    assert bp.db.height < bp.height             # not committed yet
    return steps


def apply(db, blocks, chunk_rows=3):
    bp = BlockProcessor(db, reorg_limit=10)
    bp.FLUSH_CHUNK_ROWS = chunk_rows
    for raw in blocks:
        bp.advance_block(raw)
    return bp


def reads(db, scripts=range(10)):
    """What clients can read of the index, for some scripts and every output."""
    out = []
    for n in scripts:
        out.append((db.history(hx(n)), db.utxos(hx(n)), db.balance(hx(n)),
                    db.history_between(hx(n), 0, 1000, 100)))
    chain = build_chain()
    for block_txs in chain.txs:
        for tx in block_txs:
            for idx in range(3):
                prevout = tx.txid + idx.to_bytes(4, "little")
                out.append((db.confirmed_outpoint(prevout), db.lookup_utxo(prevout)))
    return out


def journal(db):
    return list(db._leveldb.iterator(prefix=L.JOURNAL_PREFIX))


def restores(db):
    return list(db._leveldb.iterator(prefix=L.RESTORE_PREFIX))


def test_a_flush_in_steps_gives_the_same_index(tmp_path):
    chain = build_chain()
    db = open_db(tmp_path / "steps")
    bp = apply(db, chain.blocks[:3])
    assert sum(1 for _ in bp.flush_steps(first_sync=True)) > 2
    bp = apply(db, chain.blocks[3:])
    list(bp.flush_steps(first_sync=True))
    plain, _ = index(tmp_path / "plain", chain.blocks)
    assert db.digest() == plain.digest()
    assert reads(db) == reads(plain)
    assert journal(db) == []


def test_the_flushed_caches_are_freed_in_steps_after_the_commit(tmp_path):
    """Freeing a sync's caches at once would stall the reactor: the commit swaps in fresh
    ones, and the old are emptied a slice per step."""
    chain = build_chain()
    db = open_db(tmp_path / "db")
    apply(db, chain.blocks[:3]).flush(first_sync=True)
    bp = apply(db, chain.blocks[3:])
    bp.EMPTY_STEP_ITEMS = 2
    old_utxos, old_history = bp.utxo_cache, bp.history
    sizes = len(old_utxos), len(old_history)
    assert min(sizes) > 4
    steps = write_ahead_all(bp)
    next(steps)                                 # the commit
    assert db.height == bp.height and bp.utxo_cache is not old_utxos
    assert len(old_utxos) == sizes[0]           # not freed within the commit's step
    assert sum(1 for _ in steps) == sum(-(-n // 2) for n in sizes)
    assert old_utxos == {} and old_history == {}


def test_rows_written_ahead_are_invisible_until_the_commit(tmp_path):
    """New rows are; the outputs spent from the database are gone at once (the stepped
    flush is the initial sync's, before clients are served)."""
    chain = build_chain()
    db = open_db(tmp_path / "a")
    apply(db, chain.blocks[:3]).flush(first_sync=True)
    short, _ = index(tmp_path / "short", chain.blocks[:3])
    bp = apply(db, chain.blocks[3:])
    spent_from_db = [prevout for _height, record in bp.undo_records
                     for _hashX, tx_numb, prevout, _value in L.unpack_undo(record)[1]
                     if L.unpack_tx_num(tx_numb) < db.state.tx_count]
    assert spent_from_db and all(db.lookup_utxo(prevout) for prevout in spent_from_db)
    steps = write_ahead_all(bp)
    assert journal(db) != [] and restores(db) != []
    assert db.height == 2
    assert [db.history(hx(n)) for n in range(10)] == [short.history(hx(n)) for n in range(10)]
    for block_txs in chain.txs[3:]:
        for tx in block_txs:
            assert db.confirmed_outpoint(tx.txid + bytes(4)) is None
    assert not any(db.lookup_utxo(prevout) for prevout in spent_from_db)
    list(steps)                                 # the commit
    full, _ = index(tmp_path / "full", chain.blocks)
    assert reads(db) == reads(full) and journal(db) == [] and restores(db) == []


def test_a_crash_between_write_ahead_and_commit_leaves_the_committed_index(tmp_path):
    """The reopened index is the committed one, with nothing of the write-ahead left,
    and syncs on, here onto another branch, to the right digest."""
    chain = build_chain()
    db = open_db(tmp_path / "a")
    apply(db, chain.blocks[:3]).flush(first_sync=True)
    write_ahead_all(apply(db, chain.blocks[3:]))
    db.close()
    raw = plyvel.DB(str(db.path))
    ahead = len(list(raw.iterator(prefix=L.UTXO_PREFIX)))
    raw.close()
    db = open_db(tmp_path / "a")
    short, _ = index(tmp_path / "short", chain.blocks[:3])
    assert db.height == 2 and db.digest() == short.digest()
    assert len(list(db._leveldb.iterator(prefix=L.UTXO_PREFIX))) < ahead
    assert journal(db) == []
    branch = chain.fork(2)
    branch.add_block([coinbase(3, [(50, script_for(9))])], tag=1)
    bp = apply(db, branch.blocks[3:])
    list(bp.flush_steps(first_sync=True))
    other, _ = index(tmp_path / "other", branch.blocks)
    assert db.digest() == other.digest() and reads(db) == reads(other)


KILLED_MID_WRITE_AHEAD = """
import os, signal, sys
from electrumx.coins import BitcoinRegtest
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.db import IndexDB
from tests.fixtures.blocks import build_chain
blocks = build_chain().blocks
db = IndexDB(sys.argv[1], BitcoinRegtest)
db.open()
bp = BlockProcessor(db, reorg_limit=10)
for raw in blocks[:3]:
    bp.advance_block(raw)
bp.flush(first_sync=True)
for raw in blocks[3:]:
    bp.advance_block(raw)
bp.FLUSH_CHUNK_ROWS = 2
count = int(sys.argv[2])
if count < 0:
    from tests.index.test_flush_steps import steps_before_commit
    count = steps_before_commit(bp)
steps = bp.flush_steps(first_sync=True)
for _ in range(count):
    next(steps)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_during_the_write_ahead_then_a_sync_converges(tmp_path):
    """A real process killed after some chunks of its write-ahead, before the commit;
    the last time (-1) after every chunk, the deletions of spent outputs too."""
    chain = build_chain()
    full, _ = index(tmp_path / "full", chain.blocks)
    short, _ = index(tmp_path / "short", chain.blocks[:3])
    for chunks in (1, 4, -1):
        db_dir = tmp_path / f"killed-{chunks}"
        proc = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE_AHEAD, str(db_dir),
                               str(chunks)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        db = open_db(db_dir)
        assert db.height == 2 and db.digest() == short.digest()
        assert journal(db) == [] and restores(db) == []
        list(apply(db, chain.blocks[3:]).flush_steps(first_sync=True))
        assert db.digest() == full.digest()


def test_another_flush_overtaking_a_stepped_one_ends_it(tmp_path):
    """The admin `flush`, or the shutdown's, between two steps writes everything;
    the stepped flush then stops without writing again."""
    chain = build_chain()
    db = open_db(tmp_path / "a")
    bp = apply(db, chain.blocks)
    steps = bp.flush_steps(first_sync=True)
    next(steps)
    bp.flush(first_sync=True)
    assert list(steps) == [] and journal(db) == []
    plain, _ = index(tmp_path / "plain", chain.blocks)
    assert db.digest() == plain.digest()


@pytest_twisted.ensureDeferred
async def test_a_sync_flush_gives_the_reactor_turns(start_node, indexer_for, tmp_path_factory,
                                                    monkeypatch):
    """A timer keeps ticking while the sync's final flush writes its chunks."""
    from twisted.internet import reactor
    blocks, expected = tiny_chain(tmp_path_factory, "small")
    monkeypatch.setattr(BlockProcessor, "FLUSH_CHUNK_ROWS", 100)
    node = start_node(blocks=blocks)
    harness = indexer_for(node)
    indexer = harness.indexer
    flushing = []
    steps_of = BlockProcessor.flush_steps

    def watched_steps(processor, first_sync):
        flushing.append(True)
        yield from steps_of(processor, first_sync)
        flushing.pop()

    monkeypatch.setattr(BlockProcessor, "flush_steps", watched_steps)
    ticks_in_flush = []
    ticker = task.LoopingCall(lambda: ticks_in_flush.append(1) if flushing else None)
    ticker.clock = reactor
    ticker.start(0.001)
    indexer.YIELD_SECS = 0.001
    try:
        assert await harness.caught_up() == len(blocks) - 1
    finally:
        ticker.stop()
    assert len(ticks_in_flush) >= 5
    assert indexer.timings.longest_flush_stall > 0
    assert answers_match(harness.db, expected) == []
    assert harness.fatal == []


# ---- a block applied in steps ----------------------------------------------

def big_block_chain():
    """build_chain and a block of 25 transactions on it, each spending the last
    (the first spends an output flushed in an earlier block)."""
    chain = build_chain()
    prev = (chain.txs[5][0].txid, 0)
    txs = [coinbase(6, [(50, script_for(8))])]
    for n in range(24):
        tx = spend([prev], [(49 - n, script_for(n % 5)), (0, script_for(9))])
        txs.append(tx)
        prev = (tx.txid, 0)
    chain.add_block(txs)
    return chain


def test_a_block_in_steps_gives_the_same_index(tmp_path):
    chain = big_block_chain()
    db = open_db(tmp_path / "steps")
    bp = apply(db, chain.blocks[:6])
    bp.flush(first_sync=True)
    bp.BLOCK_STEP_TXS = 4
    steps = list(bp.advance_block_steps(chain.blocks[6]))
    assert len(steps) == 1 + 25 // 4         # after parsing, after every 4 transactions
    bp.flush(first_sync=True)
    plain, _ = index(tmp_path / "plain", chain.blocks)
    assert db.digest() == plain.digest()


def test_a_flush_between_a_blocks_steps_finishes_the_block_first(tmp_path):
    """The admin `flush` or the shutdown's comes while a block is half applied, and
    its caller has let the steps go: the flush applies the rest, then writes."""
    chain = big_block_chain()
    db = open_db(tmp_path / "a")
    bp = apply(db, chain.blocks[:6])
    bp.flush(first_sync=True)
    bp.BLOCK_STEP_TXS = 4
    steps = bp.advance_block_steps(chain.blocks[6])
    next(steps), next(steps), next(steps)
    del steps
    list(bp.flush_steps(first_sync=True))
    plain, _ = index(tmp_path / "plain", chain.blocks)
    assert db.height == 6 and db.digest() == plain.digest()


def test_a_block_failing_half_applied_is_never_flushed(tmp_path):
    """A spend of an output the index lacks, after the block's first steps changed the
    caches (and queued deletions): no flush may write that half, so the index stays
    at its last flush and a right chain syncs on from there."""
    chain = big_block_chain()
    db = open_db(tmp_path / "a")
    bp = apply(db, chain.blocks[:6])
    bp.flush(first_sync=True)
    before = db.digest()
    bad = chain.fork(5)
    first = spend([(chain.txs[5][0].txid, 0)], [(49, script_for(1))])
    missing = spend([(bytes(32), 0)], [(1, script_for(2))])
    bad.add_block([coinbase(6, [(50, script_for(8))]), first, missing])
    bp.BLOCK_STEP_TXS = 1
    with pytest.raises(ChainError):
        list(bp.advance_block_steps(bad.blocks[6]))
    assert bp.broken
    for flush in (lambda: bp.flush(first_sync=True),
                  lambda: list(bp.flush_steps(first_sync=True))):
        with pytest.raises(FlushError, match="half-applied"):
            flush()
    assert db.digest() == before
    bp = apply(db, chain.blocks[6:])
    bp.flush(first_sync=True)
    plain, _ = index(tmp_path / "plain", chain.blocks)
    assert db.digest() == plain.digest()


@pytest_twisted.ensureDeferred
async def test_a_sync_gives_the_reactor_turns_within_a_block(start_node, indexer_for,
                                                             tmp_path_factory, monkeypatch):
    """With a step of one transaction, a timer ticks while blocks are half applied."""
    from twisted.internet import reactor
    blocks, expected = tiny_chain(tmp_path_factory, "small")
    monkeypatch.setattr(BlockProcessor, "BLOCK_STEP_TXS", 1)
    harness = indexer_for(start_node(blocks=blocks))
    harness.indexer.YIELD_SECS = 0.0005
    ticks_mid_block = []

    def tick():
        processor = harness.indexer.processor
        if processor is not None and processor._block_in_progress is not None:
            ticks_mid_block.append(1)

    ticker = task.LoopingCall(tick)
    ticker.clock = reactor
    ticker.start(0.0005)
    try:
        assert await harness.caught_up() == len(blocks) - 1
    finally:
        ticker.stop()
    assert len(ticks_mid_block) >= 5
    assert answers_match(harness.db, expected) == []
    assert harness.fatal == []


def test_once_clients_are_served_a_stepped_flush_is_one_batch(tmp_path):
    """After catching up (a reorg's flush), nothing is deleted ahead of the commit."""
    chain = build_chain()
    db = open_db(tmp_path / "a")
    apply(db, chain.blocks[:3]).flush(first_sync=True)
    bp = apply(db, chain.blocks[3:])
    assert bp.db_spends
    steps = bp.flush_steps(first_sync=False)
    next(steps)
    assert db.height == 5 and restores(db) == [] and journal(db) == []
    assert list(steps) == []
    plain, _ = index(tmp_path / "plain", chain.blocks)
    assert db.digest() == plain.digest()
