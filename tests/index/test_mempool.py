"""The mempool over a real index: resolution, heights, balances, replacement, histogram."""

import pytest
import pytest_twisted
from twisted.internet import defer, task

from electrumx.chain.hashes import hash_to_hex_str, hashX_from_script
from electrumx.coins import BitcoinRegtest
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.db import IndexDB
from electrumx.index.mempool import MemPool, compact_fee_histogram
from tests.fixtures.blocks import ChainBuilder, coinbase, script_for, spend


class NodeMempool:
    """The node's side: its mempool txids and raw transactions."""

    def __init__(self):
        self.txs = {}
        self.vanish = set()         # listed by getrawmempool, gone by getrawtransaction

    def add(self, *txs):
        for tx in txs:
            self.txs[tx.txid_hex] = tx.serialize()

    def drop(self, *txs):
        for tx in txs:
            del self.txs[tx.txid_hex]

    def mempool_hashes(self):
        return defer.succeed(list(self.txs))

    def raw_transactions(self, hex_hashes):
        return defer.succeed([None if h in self.vanish else self.txs.get(h)
                              for h in hex_hashes])


def hx(n):
    return hashX_from_script(script_for(n))


@pytest.fixture
def world(tmp_path):
    chain = ChainBuilder()
    chain.add_block([coinbase(0, [(50, script_for(0))])])
    cb1 = coinbase(1, [(1000, script_for(1)), (2000, script_for(2))])
    chain.add_block([cb1])
    db = IndexDB(str(tmp_path), BitcoinRegtest)
    db.open()
    bp = BlockProcessor(db, reorg_limit=10)
    for raw in chain.blocks:
        bp.advance_block(raw)
    bp.flush(first_sync=False)
    node = NodeMempool()
    mempool = MemPool(BitcoinRegtest, db, node, task.Clock())
    yield chain, cb1, db, bp, node, mempool
    db.close()


@pytest_twisted.ensureDeferred
async def test_chains_of_unconfirmed_transactions(world):
    chain, cb1, db, bp, node, mempool = world
    parent = spend([(cb1.txid, 0)], [(900, script_for(3))])             # fee 100
    child = spend([(parent.txid, 0)], [(850, script_for(4))])           # fee 50
    node.add(child, parent)                  # order does not matter
    touched = await mempool.refresh()
    assert touched == {hx(1), hx(3), hx(4)}
    assert mempool.transaction_summaries(hx(3)) == sorted(
        [(parent.txid, 0, 100), (child.txid, -1, 50)], key=lambda t: -t[1])
    assert mempool.balance_delta(hx(1)) == -1000
    assert mempool.balance_delta(hx(3)) == 0
    assert mempool.unspent_outputs(hx(4)) == [(child.txid, 0, 850)]
    assert mempool.unspent_outputs(hx(3)) == []
    assert mempool.is_spent_in_mempool(cb1.txid + bytes(4))
    # The parent is mined: the child's height turns 0 without it being touched.
    chain.add_block([coinbase(2, [(50, script_for(9))]), parent])
    bp.advance_block(chain.blocks[-1])
    bp.flush(first_sync=False)
    assert mempool.on_block([parent.txid]) == {hx(1), hx(3)}
    assert not mempool.has_tx(parent.txid)
    node.drop(parent)
    touched = await mempool.refresh()
    assert mempool.transaction_summaries(hx(4)) == [(child.txid, 0, 50)]


@pytest_twisted.ensureDeferred
async def test_replacement_releases_the_spends(world):
    _chain, cb1, _db, _bp, node, mempool = world
    first = spend([(cb1.txid, 1)], [(1990, script_for(5))])
    node.add(first)
    await mempool.refresh()
    assert mempool.balance_delta(hx(5)) == 1990
    replacement = spend([(cb1.txid, 1)], [(1900, script_for(6))])
    node.drop(first)
    node.add(replacement)
    touched = await mempool.refresh()
    assert {hx(5), hx(6), hx(2)} <= touched
    assert mempool.balance_delta(hx(5)) == 0 and mempool.balance_delta(hx(6)) == 1900
    assert mempool.spender(cb1.txid + (1).to_bytes(4, "little")) == replacement.txid
    assert mempool.transaction_summaries(hx(5)) == []


@pytest_twisted.ensureDeferred
async def test_vanished_garbage_and_unknown_inputs_are_left_out(world):
    _chain, cb1, _db, _bp, node, mempool = world
    gone = spend([(cb1.txid, 0)], [(990, script_for(7))])
    orphan = spend([(b"\x42" * 32, 0)], [(10, script_for(8))])
    node.add(gone, orphan)
    node.vanish.add(gone.txid_hex)
    node.txs["ee" * 32] = b"\x01\x02garbage"
    await mempool.refresh()
    assert mempool.tx_count == 0
    assert orphan.txid in mempool.unresolved
    # The orphan's parent shows up later: now it resolves.
    parent = spend([(cb1.txid, 1)], [(1500, script_for(8))])
    orphan2 = spend([(parent.txid, 0)], [(1400, script_for(8))])
    node.add(parent, orphan2)
    await mempool.refresh()
    assert mempool.has_tx(parent.txid) and mempool.has_tx(orphan2.txid)


def test_protocol_order_of_mempool_entries(world):
    _chain, cb1, _db, _bp, node, mempool = world
    from electrumx.index.mempool import MemTx
    mempool.txs = {
        b"\x02" * 32: MemTx([b"\x09" * 36], [(hx(1), 5)], [], 1, 100),
        b"\x01" * 32: MemTx([b"\x03" * 32 + bytes(4)], [(hx(1), 5)], [], 2, 100),
        b"\x03" * 32: MemTx([b"\x08" * 36], [(hx(1), 5)], [], 3, 100),
    }
    mempool.hashXs = {hx(1): set(mempool.txs)}
    summaries = mempool.transaction_summaries(hx(1))
    assert [(hash_to_hex_str(t)[:2], h) for t, h, _f in summaries] == [
        ("02", 0), ("03", 0), ("01", -1)]


def test_fee_histogram_compaction():
    # (fee, vsize) pairs: rates 100, 50.5, 50.55 (floored to 50.5), 10 and a 1 sat/vB lump.
    txs = [(100 * 20_000, 20_000), (505 * 2_000, 20_000), (50_550 * 20, 20_000),
           (10 * 5_000, 5_000), (1 * 100_000, 100_000)]
    assert compact_fee_histogram(txs, 30_000) == [
        [50.5, 60_000], [10.0, 5_000], [1.0, 100_000]]
    assert compact_fee_histogram([], 30_000) == []
