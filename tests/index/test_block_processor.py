"""The block processor against real LevelDB files: apply, flush, back out."""

import json

import plyvel
import pytest

from electrumx.chain.hashes import hashX_from_script
from electrumx.coins import BitcoinRegtest, Bitcoin
from electrumx.index import layout as L
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.db import ChainError, DBError, FlushError, IndexDB
from tests.fixtures.blocks import build_chain, coinbase, script_for, spend

COIN = BitcoinRegtest


_OPEN = []


@pytest.fixture(autouse=True)
def close_databases():
    yield
    while _OPEN:
        _OPEN.pop().close()


def open_db(path, coin=COIN):
    db = IndexDB(str(path), coin)
    db.open()
    _OPEN.append(db)
    return db


def index(path, blocks, flush_every=1, undo_from=0):
    db = open_db(path)
    bp = BlockProcessor(db, reorg_limit=10)
    bp.undo_from_height = undo_from
    for n, raw in enumerate(blocks, 1):
        bp.advance_block(raw)
        if n % flush_every == 0:
            bp.flush(first_sync=True)
    bp.flush(first_sync=True)
    return db, bp


def hx(n):
    return hashX_from_script(script_for(n))


def test_history_balance_and_utxos(tmp_path):
    chain = build_chain()
    db, _bp = index(tmp_path, chain.blocks)
    txs = chain.txs
    assert db.height == 5
    assert db.state.tx_count == 10
    # Genesis is not indexed.
    assert db.history(hx(0)) == []
    assert db.history(hx(1)) == [(txs[1][0].txid, 1), (txs[2][0].txid, 2),
                                 (txs[2][1].txid, 2), (txs[3][1].txid, 3),
                                 (txs[4][1].txid, 4)]
    assert db.history(hx(4)) == [(txs[2][2].txid, 2), (txs[4][1].txid, 4)]
    assert db.balance(hx(1)) == 50          # block 2 coinbase; 10 from t3 spent in t4
    assert db.balance(hx(2)) == 38          # its 30 was spent within block 2
    assert db.balance(hx(4)) == 0
    assert db.balance(hx(6)) == 100
    assert db.utxos(hx(6)) == [(5, 0, 50), (7, 0, 50)]
    assert db.block_txids(2) == [tx.txid for tx in txs[2]]
    assert db.headers(0, 100) == b"".join(b[:80] for b in chain.blocks)


def test_flush_points_do_not_change_the_index(tmp_path):
    chain = build_chain()
    digests = set()
    for every in (1, 2, 4, 100):
        db, _ = index(tmp_path / str(every), chain.blocks, flush_every=every)
        digests.add(db.digest())
        db.close()
    assert len(digests) == 1


def test_reopen_resumes(tmp_path):
    chain = build_chain()
    db, _ = index(tmp_path, chain.blocks[:3])
    db.close()
    db = open_db(tmp_path)
    bp = BlockProcessor(db, reorg_limit=10)
    for raw in chain.blocks[3:]:
        bp.advance_block(raw)
    bp.flush(first_sync=False)
    whole, _ = index(tmp_path / "whole", chain.blocks)
    assert db.digest() == whole.digest()


def test_backup_restores_the_earlier_index(tmp_path):
    chain = build_chain()
    db, bp = index(tmp_path / "a", chain.blocks)
    touched = set()
    for _ in range(3):
        touched |= bp.backup_block()
    assert db.height == 2
    assert hx(2) in touched and hx(4) in touched
    short, _ = index(tmp_path / "b", chain.blocks[:3])
    assert db.digest() == short.digest()
    assert db.tx_counts.tolist() == short.tx_counts.tolist()
    # And the index goes forward again on another branch.
    branch = chain.fork(2)
    branch.add_block([coinbase(3, [(50, script_for(9))])], tag=1)
    bp.advance_block(branch.blocks[-1])
    bp.flush(first_sync=False)
    assert db.history(hx(9)) == [(branch.txs[-1][0].txid, 3)]
    assert db.history(hx(5)) == []


def test_backup_trims_history_rows_written_in_one_flush(tmp_path):
    chain = build_chain()
    db, bp = index(tmp_path / "a", chain.blocks, flush_every=100)
    bp.backup_block()
    bp.backup_block()
    short, _ = index(tmp_path / "b", chain.blocks[:4])
    assert db.digest() == short.digest()


def test_reorg_deeper_than_undo_is_refused(tmp_path):
    chain = build_chain()
    db, bp = index(tmp_path, chain.blocks, undo_from=4)
    bp.backup_block()
    bp.backup_block()
    before = db.digest()
    with pytest.raises(ChainError, match="REORG_LIMIT"):
        bp.backup_block()
    assert db.digest() == before and db.height == 3


def test_unknown_utxo_is_a_chain_error(tmp_path):
    chain = build_chain()
    db, bp = index(tmp_path, chain.blocks[:2])
    bad = spend([(b"\x11" * 32, 0)], [(1, script_for(1))])
    chain2 = chain.fork(1)
    chain2.add_block([coinbase(2, [(50, script_for(1))]), bad])
    with pytest.raises(ChainError, match="not found"):
        bp.advance_block(chain2.blocks[-1])


def test_block_that_does_not_connect(tmp_path):
    chain = build_chain()
    db, bp = index(tmp_path, chain.blocks[:2])
    with pytest.raises(ChainError, match="does not connect"):
        bp.advance_block(chain.blocks[3])


def test_failed_write_leaves_the_index_as_it_was(tmp_path, monkeypatch):
    chain = build_chain()
    db, bp = index(tmp_path, chain.blocks[:3])
    before = db.digest()
    bp.advance_block(chain.blocks[3])

    class FullDisk:
        """The database with every batch failing at commit, as on a full disk."""

        def __init__(self, real):
            self.real = real

        def write_batch(self, **kwargs):
            return FailingBatch()

        def __getattr__(self, name):
            return getattr(self.real, name)

    class FailingBatch:
        def put(self, key, value):
            pass

        def delete(self, key):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            raise plyvel.IOError("IO error: No space left on device")

    monkeypatch.setattr(db, "_db", FullDisk(db._db))      # LevelDB's handle, inside IndexDB
    with pytest.raises(FlushError, match="No space left"):
        bp.flush(first_sync=True)
    monkeypatch.undo()
    assert db.digest() == before and db.height == 2


def test_foreign_and_old_databases_are_refused(tmp_path):
    chain = build_chain()
    db, _ = index(tmp_path, chain.blocks[:2])
    db.close()
    # Another coin's file name differs, so point a mainnet DB at the same path.
    other = IndexDB(str(tmp_path), Bitcoin)
    other.path = db.path
    with pytest.raises(DBError, match="is for Bitcoin regtest"):
        other.open()
    db.close()
    for version, why in ((1, "version 2 added the spent-outpoint table"),
                         (99, "reads version 2: it cannot be upgraded")):
        raw = plyvel.DB(db.path)
        state = json.loads(raw.get(L.STATE_KEY))
        raw.put(L.STATE_KEY, json.dumps(dict(state, version=version)).encode())
        raw.close()
        with pytest.raises(DBError, match=f"layout version {version}") as refused:
            open_db(tmp_path)
        assert why in str(refused.value)
        assert "indexes the chain again from the node (a full re-sync)" in str(refused.value)


def test_undo_records_are_kept_for_reorg_limit_blocks_only(tmp_path):
    chain = build_chain()
    db = open_db(tmp_path)
    bp = BlockProcessor(db, reorg_limit=2)
    for raw in chain.blocks[:4]:
        bp.advance_block(raw)
    bp.flush(first_sync=True)
    assert [h for h in range(6) if db.has_undo(h)] == [2, 3]
    for raw in chain.blocks[4:]:
        bp.advance_block(raw)
        bp.flush(first_sync=False)
    assert [h for h in range(6) if db.has_undo(h)] == [4, 5]


def index_writing_ahead(path, blocks, flush_at=()):
    """Apply `blocks`, writing txids and undo records ahead after every block and
    committing only after the block numbers in `flush_at`; return (db, processor)."""
    db = open_db(path)
    bp = BlockProcessor(db, reorg_limit=10)
    bp.WRITE_AHEAD_BYTES = 0
    for n, raw in enumerate(blocks, 1):
        bp.advance_block(raw)
        bp.write_ahead_if_due()
        if n in flush_at:
            bp.flush(first_sync=True)
    return db, bp


def test_writing_ahead_does_not_change_the_index(tmp_path):
    chain = build_chain()
    db, bp = index_writing_ahead(tmp_path / "ahead", chain.blocks, flush_at={2, 4})
    bp.flush(first_sync=True)
    plain, _ = index(tmp_path / "plain", chain.blocks)
    assert db.digest() == plain.digest()
    assert db.block_txids(5) == plain.block_txids(5)
    assert all(db.undo_record(h) == plain.undo_record(h) for h in range(6))


def test_a_crash_after_writing_ahead_leaves_the_committed_index(tmp_path):
    """Blocks 4 and 5 had their txids and undo records written, never committed:
    the reopened index is exactly the 3-block one, and syncs on from there."""
    chain = build_chain()
    db, _bp = index_writing_ahead(tmp_path / "a", chain.blocks, flush_at={3})
    assert db.tx_hash(db.state.tx_count) is not None     # written ahead
    db.close()
    db = open_db(tmp_path / "a")
    short, _ = index(tmp_path / "short", chain.blocks[:3])
    assert db.height == 2 and db.digest() == short.digest()
    # A reorg to another branch after the restart replaces what was written ahead.
    branch = chain.fork(2)
    branch.add_block([coinbase(3, [(50, script_for(9))])], tag=1)
    bp = BlockProcessor(db, reorg_limit=10)
    bp.advance_block(branch.blocks[-1])
    bp.flush(first_sync=False)
    other, _ = index(tmp_path / "other", branch.blocks)
    assert db.digest() == other.digest()
    assert db.block_txids(3) == [branch.txs[-1][0].txid]
