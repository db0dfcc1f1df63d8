"""The spent-outpoint table and outpoint status over real LevelDB files, no mempool.

Every output of the exact test chain is checked against the status worked out
from the raw blocks alone (`tests.fixtures.outpoints`), however the blocks were
flushed, after a restart and after blocks are backed out.
"""

import plyvel
import pytest

from electrumx.chain.outpoint import UNKNOWN, OutpointStatus
from electrumx.index import layout as L
from electrumx.index.read_api import ChainReader
from tests.fixtures.blocks import build_chain, coinbase, script_for, spend
from tests.fixtures.outpoints import chain_outpoints, differences
from tests.index.test_block_processor import COIN, hx, index, open_db
from tests.index.test_block_processor import close_databases  # noqa: F401 (autouse fixture)


def reader_of(db):
    return ChainReader(db, None, None)


def status(db, tx, idx):
    return reader_of(db).outpoint_status(tx.txid, idx)


@pytest.mark.parametrize("flush_every", [1, 2, 100])
def test_every_output_of_the_chain_however_it_was_flushed(tmp_path, flush_every):
    """flush_every=100 puts the whole chain in one flush: outputs created and spent
    between two flushes (never in ``u`` or ``h``) must still get their ``s`` row."""
    chain = build_chain()
    db, _bp = index(tmp_path, chain.blocks, flush_every=flush_every)
    expected = chain_outpoints(COIN, chain.blocks)
    assert len(expected) == 11
    assert differences(reader_of(db), expected) == []


def test_the_states_of_the_test_chain(tmp_path):
    chain = build_chain()
    db, _bp = index(tmp_path, chain.blocks, flush_every=100)
    cb2, t2a, t2b = chain.txs[2]
    t3, t4 = chain.txs[3][1], chain.txs[4][1]
    # Spent in its own block, within one flush.
    assert status(db, t2a, 0) == OutpointStatus(2, hx(2), t2b.txid, 2)
    # Spent in a later block.
    assert status(db, t2a, 1) == OutpointStatus(2, hx(3), t3.txid, 3)
    assert status(db, t3, 0) == OutpointStatus(3, hx(1), t4.txid, 4)
    # Unspent.
    assert status(db, cb2, 0) == OutpointStatus(2, hx(1))
    assert status(db, t4, 0) == OutpointStatus(4, hx(2))
    # Never spendable, past the last output, the genesis coinbase, an unknown txid.
    assert status(db, t2a, 2) == UNKNOWN
    assert status(db, t2a, 3) == UNKNOWN
    assert status(db, t4, 0xFFFFFFFF) == UNKNOWN
    assert status(db, chain.txs[0][0], 0) == UNKNOWN
    reader = reader_of(db)
    assert reader.outpoint_status(bytes(32), 0) == UNKNOWN
    assert reader.outpoint_status(t4.txid, -1) == UNKNOWN
    assert reader.outpoint_status(t4.txid, 1 << 32) == UNKNOWN
    assert reader.outpoint_status(t4.txid[:31], 0) == UNKNOWN
    for txid, idx in ((t4.txid, True), (t4.txid, 0.0), (t4.txid, "0"), (t4.txid.hex(), 0)):
        with pytest.raises(TypeError):
            reader.outpoint_status(txid, idx)


def test_a_txid_sharing_the_key_prefix_of_an_output_is_not_that_output(tmp_path):
    """The tables are keyed by the txid's first 4 bytes: a client's txid with those
    bytes and nothing else in common must be UNKNOWN, spent or unspent; and of
    two rows under one prefix, the one whose full txid matches answers."""
    chain = build_chain()
    db, _bp = index(tmp_path, chain.blocks)
    t2a, t4 = chain.txs[2][1], chain.txs[4][1]
    reader = reader_of(db)
    for tx in (t2a, t4):                    # t2a:0 is spent, t4:0 unspent
        assert reader.outpoint_status(tx.txid[:4] + bytes(28), 0) == UNKNOWN
    # A colliding row: another transaction's output under t2a's prefix, spent.
    t4_num = db.state.tx_count - 2      # block 5 holds only its coinbase
    assert db.tx_hash(t4_num) == t4.txid
    db.close()
    raw = plyvel.DB(db.path)
    prevout = t2a.txid + bytes(4)
    raw.put(L.spent_key(prevout, L.pack_tx_num(t4_num)), L.pack_tx_num(t4_num) + hx(9))
    raw.close()
    db = open_db(tmp_path)
    assert status(db, t2a, 0) == OutpointStatus(2, hx(2), chain.txs[2][2].txid, 2)


def test_statuses_survive_a_restart(tmp_path):
    chain = build_chain()
    db, _bp = index(tmp_path, chain.blocks[:4])
    db.close()
    db = open_db(tmp_path)
    assert differences(reader_of(db), chain_outpoints(COIN, chain.blocks[:4])) == []


def test_backing_blocks_out_unspends_and_unfunds(tmp_path):
    chain = build_chain()
    db, bp = index(tmp_path / "a", chain.blocks, flush_every=100)
    t2a, t3, t4 = chain.txs[2][1], chain.txs[3][1], chain.txs[4][1]
    bp.backup_block()
    bp.backup_block()                       # blocks 5 and 4 are gone
    assert status(db, t3, 0) == OutpointStatus(3, hx(1))            # un-spent
    assert status(db, chain.txs[2][2], 0) == OutpointStatus(2, hx(4))
    assert status(db, t4, 0) == UNKNOWN                             # un-funded
    assert differences(reader_of(db), chain_outpoints(COIN, chain.blocks[:4])) == []
    bp.backup_block()
    bp.backup_block()                       # block 2 spent t2a:0 inside itself
    assert status(db, t2a, 0) == UNKNOWN and status(db, t3, 0) == UNKNOWN
    assert not list(db._leveldb.iterator(prefix=L.SPENT_PREFIX))
    short, _ = index(tmp_path / "b", chain.blocks[:2])
    assert db.digest() == short.digest()
    # Forward again on another branch, which spends t2a's parent output differently.
    branch = chain.fork(1)
    other = spend([(chain.txs[1][0].txid, 0)], [(40, script_for(8))])
    branch.add_block([coinbase(2, [(50, script_for(9))]), other], tag=1)
    bp.advance_block(branch.blocks[-1])
    bp.flush(first_sync=False)
    assert status(db, chain.txs[1][0], 0) == OutpointStatus(1, hx(1), other.txid, 2)
    assert differences(reader_of(db), chain_outpoints(COIN, branch.blocks)) == []


def test_the_spend_rows_ride_in_the_flush_and_count_in_the_cache(tmp_path):
    """Nothing of a spend reaches the database before the flush that commits its block
    (so a crash before it leaves no row), and the pending rows count in the cache."""
    chain = build_chain()
    db, bp = index(tmp_path, chain.blocks[:3])
    before = bp.cache_bytes()
    bp.advance_block(chain.blocks[3])       # spends t2a:1, flushed in block 2
    assert len(bp.spends) == L.SPEND_RECORD.size
    assert bp.cache_bytes() >= before + L.SPEND_RECORD.size
    assert status(db, chain.txs[2][1], 1) == OutpointStatus(2, hx(3))
    bp.flush(first_sync=True)
    assert bp.spends == bytearray()
    assert status(db, chain.txs[2][1], 1) == OutpointStatus(2, hx(3), chain.txs[3][1].txid, 3)


class MempoolSpendingEverything:
    """A mempool in a state the real one never shows (it drops a spend conflicting with a
    block as it follows the index): every output spent by one transaction, -1 deep."""

    SPENDER = b"\x77" * 32

    def funding(self, prevout):
        return None

    def spending(self, prevout):
        return self.SPENDER, -1


def test_a_confirmed_spend_wins_over_a_mempool_one(tmp_path):
    chain = build_chain()
    db, _bp = index(tmp_path, chain.blocks)
    reader = ChainReader(db, MempoolSpendingEverything(), None)
    t2a, t3 = chain.txs[2][1], chain.txs[3][1]
    assert reader.outpoint_status(t2a.txid, 1) == OutpointStatus(2, hx(3), t3.txid, 3)
    spender = MempoolSpendingEverything.SPENDER
    assert reader.outpoint_status(chain.txs[4][1].txid, 0) == OutpointStatus(
        4, hx(2), spender, -1)
