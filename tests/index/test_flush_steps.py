"""A flush in steps: the bulk written ahead in chunks, invisible until its small commit,
and taken back out when a crash (kill -9) comes between."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import plyvel
import pytest_twisted
from twisted.internet import task

from electrumx.index import layout as L
from electrumx.index.block_processor import BlockProcessor
from tests.fixtures.blocks import build_chain, coinbase, script_for
from tests.index.test_block_processor import hx, index, open_db
from tests.index.test_indexer_regtest import answers_match
from tests.fixtures.regtest import tiny_chain

ROOT = Path(__file__).resolve().parents[2]


def write_ahead_all(bp):
    """Run a stepped flush up to, not including, its commit; return the steps left."""
    rows = sum(1 for _ in bp._rows_ahead())
    steps = bp.flush_steps(first_sync=True)
    for _ in range(-(-rows // bp.FLUSH_CHUNK_ROWS)):
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


def test_rows_written_ahead_are_invisible_until_the_commit(tmp_path):
    chain = build_chain()
    db = open_db(tmp_path / "a")
    apply(db, chain.blocks[:3]).flush(first_sync=True)
    short, _ = index(tmp_path / "short", chain.blocks[:3])
    bp = apply(db, chain.blocks[3:])
    steps = write_ahead_all(bp)
    assert journal(db) != []
    assert db.height == 2 and reads(db) == reads(short)
    list(steps)                                 # the commit
    full, _ = index(tmp_path / "full", chain.blocks)
    assert reads(db) == reads(full) and journal(db) == []


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
steps = bp.flush_steps(first_sync=True)
for _ in range(int(sys.argv[2])):
    next(steps)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_during_the_write_ahead_then_a_sync_converges(tmp_path):
    """A real process killed after some chunks of its write-ahead, before the commit."""
    chain = build_chain()
    full, _ = index(tmp_path / "full", chain.blocks)
    short, _ = index(tmp_path / "short", chain.blocks[:3])
    for chunks in (1, 4):
        db_dir = tmp_path / f"killed-{chunks}"
        proc = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE_AHEAD, str(db_dir),
                               str(chunks)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        db = open_db(db_dir)
        assert db.height == 2 and db.digest() == short.digest() and journal(db) == []
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
