"""IndexDB's writes and its reads for the block processor and the mempool, over real LevelDB
files: the methods through which alone the rest of the server reaches the index."""

from dataclasses import replace

import plyvel
import pytest
import pytest_twisted
from twisted.internet import threads

from electrumx.chain.hashes import hashX_from_script
from electrumx.coins import BitcoinRegtest
from electrumx.index import layout as L
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.db import FlushError, IndexDB
from tests.fixtures.blocks import build_chain, script_for


@pytest.fixture
def open_db(tmp_path):
    """open_db(name) -> an open IndexDB in tmp_path/name, closed after the test."""
    opened = []

    def open_(name="db"):
        db = IndexDB(str(tmp_path / name), BitcoinRegtest)
        db.open()
        opened.append(db)
        return db
    yield open_
    for db in opened:
        db.close()


@pytest.fixture
def indexed(open_db):
    """An IndexDB of the fixture chain (blocks 0..5), flushed after every block, with
    undo records for every block; and the chain."""
    chain = build_chain()
    db = open_db()
    bp = BlockProcessor(db, reorg_limit=10)
    for raw in chain.blocks:
        bp.advance_block(raw)
        bp.flush(first_sync=False)
    return db, chain


def hx(n):
    return hashX_from_script(script_for(n))


def outpoint(txid, idx):
    return txid + idx.to_bytes(4, "little")


def test_commit_writes_the_changes_with_the_state_and_takes_both_on(open_db):
    db = open_db()
    one = replace(db.state, height=0, tx_count=1, tip=b"\1" * 32)
    db.commit(one, lambda batch: batch.put(L.header_key(0), L.header_value(b"h0" * 40, 1)),
              [1])
    two = replace(one, height=1, tx_count=3, tip=b"\2" * 32, first_sync=False)
    db.commit(two, lambda batch: batch.put(L.header_key(1), L.header_value(b"h1" * 40, 3)),
              [3])
    assert db.state == two and db.tx_counts.tolist() == [1, 3]
    db.close()
    db.open()
    assert db.state == two and db.tx_counts.tolist() == [1, 3]
    assert db.headers(0, 2) == b"h0" * 40 + b"h1" * 40
    # Backing a block out: the counts above the new height go.
    db.commit(one, lambda batch: batch.delete(L.header_key(1)))
    assert db.state == one and db.tx_counts.tolist() == [1]
    db.close()
    db.open()
    assert db.state == one and db.headers(0, 2) == b"h0" * 40


def test_a_failed_commit_writes_nothing_and_takes_nothing_on(indexed):
    db, _chain = indexed
    state, counts, digest = db.state, db.tx_counts.tolist(), db.digest()

    def write(batch):
        batch.delete(L.header_key(5))
        batch.put(L.txid_key(99), b"\0" * 32)
        raise plyvel.IOError("IO error: the disk went away")     # as a read in the batch may

    with pytest.raises(FlushError, match="writing the index failed: IO error: the disk"):
        db.commit(replace(state, height=4), write, [])
    assert db.state == state and db.tx_counts.tolist() == counts
    assert db.digest() == digest and db.tx_hash(99) is None


def test_write_ahead_writes_rows_and_leaves_the_state(open_db):
    db = open_db()
    state = db.state

    def write(batch):
        batch.put(L.txid_key(0), b"\7" * 32)
        batch.put(L.undo_key(0), L.pack_undo(b"", b""))

    db.write_ahead(write)
    assert db.state == state
    db.close()
    db.open()
    assert db.state == state and db.height == -1
    assert db.tx_hash(0) == b"\7" * 32 and db.undo_record(0) == L.pack_undo(b"", b"")


def test_undo_records_and_the_keys_to_prune(indexed):
    db, chain = indexed
    assert all(db.undo_record(h) is not None for h in range(6))
    assert db.undo_record(6) is None
    created, spent = L.unpack_undo(db.undo_record(4))
    t4 = chain.txs[4][1]
    assert {prevout for _hashX, _tx_numb, prevout in created} == {
        outpoint(chain.txs[4][0].txid, 0), outpoint(t4.txid, 0)}
    assert sorted((hashX, L.unpack_tx_num(tx_numb), value)
                  for hashX, tx_numb, _prevout, value in spent) == sorted(
        [(hx(1), 6, 10), (hx(4), 4, 29)])
    assert list(db.undo_keys_below(3)) == [L.undo_key(h) for h in range(3)]
    assert list(db.undo_keys_below(0)) == []


def test_history_rows_newest_first(indexed):
    db, _chain = indexed
    rows = list(db.history_rows_newest_first(hx(1)))
    assert len(rows) == 4                       # one row per flush that touched script 1
    assert [key for key, _row in rows] == sorted((key for key, _row in rows), reverse=True)
    assert all(key == L.history_key(hx(1), row) for key, row in rows)
    assert [n for _key, row in reversed(rows) for n in L.unpack_tx_nums(row)] == \
        db.history_tx_nums(hx(1)) == [1, 2, 3, 6, 8]
    assert list(db.history_rows_newest_first(hx(99))) == []


def test_find_utxo_and_lookup_utxo(indexed):
    db, chain = indexed
    unspent = outpoint(chain.txs[3][1].txid, 1)               # 8 to script 5
    assert db.find_utxo(unspent) == (hx(5), L.pack_tx_num(6), L.pack_value(8))
    assert db.lookup_utxo(unspent) == (hx(5), 8)
    spent = outpoint(chain.txs[1][0].txid, 0)                 # spent in block 2
    assert db.find_utxo(spent) is None and db.lookup_utxo(spent) is None
    assert db.find_utxo(outpoint(b"\x11" * 32, 0)) is None


@pytest_twisted.ensureDeferred
async def test_compact_in_a_thread_keeps_the_index(indexed):
    db, _chain = indexed
    digest = db.digest()
    await threads.deferToThread(db.compact)
    assert db.digest() == digest
