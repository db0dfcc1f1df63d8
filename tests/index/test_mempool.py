"""The mempool over a real index: new txs, unconfirmed chains, replacement, txs that
vanish or do not parse or wait for a parent, balances and unspent outputs.

The `World` here (a real index in tmp_path, a scripted node mempool, a MemPool
over both) serves the other test_mempool_* files too.
"""

import pytest
import pytest_twisted
from twisted.internet import defer, task
from twisted.logger import Logger as TwistedLogger

from electrumx.chain.hashes import hash_to_hex_str, hashX_from_script
from electrumx.chain.script import null_data_script
from electrumx.coins import BitcoinRegtest
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.db import IndexDB
from electrumx.index.mempool import MemPool
from tests.fixtures.blocks import ChainBuilder, coinbase, script_for, spend


def hx(n):
    """The hashX of test script `n`."""
    return hashX_from_script(script_for(n))


def outpoint(tx, idx):
    return tx.txid + idx.to_bytes(4, "little")


class NodeMempool:
    """The node's side: the txids it lists and the raw transactions it serves.

    The test edits `raw` between refreshes; `fetched` records every batch asked for.
    Like a node with txindex, it serves mined transactions too.
    """

    def __init__(self):
        self.raw = {}               # display hex -> raw bytes, in listing order
        self.served = {}            # every raw transaction it has ever had
        self.vanished = set()       # listed by getrawmempool, gone by getrawtransaction
        self.fetched = []           # the batches of display hexes asked for
        self.during_fetch = None    # called once, inside the next raw_transactions
        self.index_tip = None       # the World sets it: the tip the index is at
        self.ahead_of_index = None  # a block hash the node has and the index lacks

    def add(self, *txs):
        for tx in txs:
            self.raw[tx.txid_hex] = self.served[tx.txid_hex] = tx.serialize()

    def drop(self, *txs):
        for tx in txs:
            del self.raw[tx.txid_hex]

    def fetched_txids(self):
        return [h for batch in self.fetched for h in batch]

    def mempool_hashes(self):
        return defer.succeed(list(self.raw))

    def best_block_hash(self):
        """The node's tip: the index's, unless a test says the node is ahead."""
        return defer.succeed(self.ahead_of_index or hash_to_hex_str(self.index_tip()))

    def raw_transactions(self, hex_hashes):
        self.fetched.append(list(hex_hashes))
        hook, self.during_fetch = self.during_fetch, None
        if hook is not None:
            hook()
        return defer.succeed([None if h in self.vanished else self.served.get(h)
                              for h in hex_hashes])


class World:
    """Blocks 0 and 1 indexed; block 1's coinbase pays 1000, 2000 and 3000 sats to
    scripts 1, 2 and 3: `funding` outputs 0, 1 and 2 for the mempool to spend."""

    def __init__(self, tmp_path, coin=BitcoinRegtest):
        self.chain = ChainBuilder()
        self.chain.add_block([coinbase(0, [(50, script_for(0))])])
        self.funding = coinbase(1, [(1000, script_for(1)), (2000, script_for(2)),
                                    (3000, script_for(3))])
        self.chain.add_block([self.funding])
        self.db = IndexDB(str(tmp_path), BitcoinRegtest)
        self.db.open()
        self.processor = BlockProcessor(self.db, reorg_limit=10)
        for raw in self.chain.blocks:
            self.processor.advance_block(raw)
        self.processor.flush(first_sync=False)
        self.node = NodeMempool()
        self.node.index_tip = lambda: self.db.tip
        self.clock = task.Clock()
        self.mempool = MemPool(coin, self.db, self.node, self.clock)
        self.lookups = 0
        lookup = self.db.lookup_utxo

        def counted_lookup(prevout):
            self.lookups += 1
            return lookup(prevout)

        self.db.lookup_utxo = counted_lookup

    def mine(self, *txs):
        """Index a block holding `txs` (the node's mempool loses them); its txids."""
        height = len(self.chain.blocks)
        block = [coinbase(height, [(50, script_for(100 + height))]), *txs]
        self.chain.add_block(block)
        self.processor.advance_block(self.chain.blocks[-1])
        self.processor.flush(first_sync=False)
        for tx in txs:
            self.node.raw.pop(tx.txid_hex, None)
        return [tx.txid for tx in block]

    def back_out(self, *returning):
        """Back the tip block out of the index; `returning` go back to the node's mempool."""
        self.processor.backup_block()
        self.chain = self.chain.fork(self.db.height)
        self.node.add(*returning)

    def close(self):
        self.db.close()


@pytest.fixture
def world(tmp_path):
    world = World(tmp_path)
    yield world
    world.close()


def summary_heights(mempool, hashX):
    return [(txid, height) for txid, height, _fee in mempool.transaction_summaries(hashX)]


@pytest_twisted.ensureDeferred
async def test_new_transactions_are_resolved_against_the_index(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    pay = spend([(funding.txid, 0), (funding.txid, 1)],
                [(2500, script_for(1)), (400, script_for(4)), (10, null_data_script(b"x"))])
    node.add(pay)
    touched = await mempool.refresh()
    assert touched == {hx(1), hx(2), hx(4)}            # funding and spending scripts
    assert mempool.has_tx(pay.txid) and mempool.tx_count == 1
    assert mempool.total_vsize == pay.vsize
    fee = 3000 - 2910                                   # the OP_RETURN's 10 sats are paid out
    for n in (1, 2, 4):
        assert mempool.transaction_summaries(hx(n)) == [(pay.txid, 0, fee)]
    assert mempool.hashXs_with_unconfirmed() == {hx(1), hx(2), hx(4)}
    assert mempool.transaction_summaries(hx(3)) == []
    # Nothing new: nothing touched, nothing fetched, nothing looked up.
    fetches, lookups = len(node.fetched), world.lookups
    assert await mempool.refresh() == set()
    assert (len(node.fetched), world.lookups) == (fetches, lookups)


@pytest_twisted.ensureDeferred
async def test_balance_deltas_count_spends_of_confirmed_and_unconfirmed_outputs(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    first = spend([(funding.txid, 0), (funding.txid, 1)],
                  [(2500, script_for(1)), (400, script_for(4))])
    second = spend([(first.txid, 0)], [(2400, script_for(4))])
    node.add(first, second)
    await mempool.refresh()
    assert mempool.balance_delta(hx(1)) == -1000 + 2500 - 2500
    assert mempool.balance_delta(hx(2)) == -2000
    assert mempool.balance_delta(hx(4)) == 400 + 2400
    assert mempool.balance_delta(hx(3)) == 0
    # Unspent: mempool outputs not spent in the mempool, by display txid.
    assert mempool.unspent_outputs(hx(1)) == []
    assert mempool.unspent_outputs(hx(4)) == sorted(
        [(first.txid, 1, 400), (second.txid, 0, 2400)], key=lambda u: hash_to_hex_str(u[0]))
    assert mempool.spender(outpoint(funding, 0)) == first.txid
    assert mempool.spender(outpoint(first, 0)) == second.txid
    assert mempool.is_spent_in_mempool(outpoint(funding, 1))
    assert not mempool.is_spent_in_mempool(outpoint(funding, 2))
    assert mempool.spender(outpoint(first, 1)) is None


@pytest_twisted.ensureDeferred
async def test_unconfirmed_chain_heights_and_the_switch_when_the_parent_is_mined(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    parent = spend([(funding.txid, 0)], [(900, script_for(4))])        # fee 100
    child = spend([(parent.txid, 0)], [(850, script_for(5))])          # fee 50
    grandchild = spend([(child.txid, 0)], [(800, script_for(5))])      # fee 50
    node.add(grandchild, child, parent)         # children listed first ...
    mempool.BATCH_SIZE = 1                      # ... and fetched in separate batches
    assert await mempool.refresh() == {hx(1), hx(4), hx(5)}
    assert all(len(batch) == 1 for batch in node.fetched) and len(node.fetched) == 3
    assert mempool.transaction_summaries(hx(4)) == [(parent.txid, 0, 100), (child.txid, -1, 50)]
    assert summary_heights(mempool, hx(5)) == sorted(
        [(child.txid, -1), (grandchild.txid, -1)], key=lambda s: hash_to_hex_str(s[0]))
    # The parent is mined: the child turns 0 although nothing touched it.
    touched = mempool.on_block(world.mine(parent))
    assert touched == {hx(1), hx(4)}
    assert not mempool.has_tx(parent.txid) and mempool.has_tx(child.txid)
    assert summary_heights(mempool, hx(5)) == sorted(
        [(child.txid, 0), (grandchild.txid, -1)], key=lambda s: -s[1])
    assert mempool.balance_delta(hx(4)) == -900          # spends the now confirmed output
    assert await mempool.refresh() == set()
    assert mempool.tx_count == 2


@pytest_twisted.ensureDeferred
async def test_replacement_drops_the_replaced_tx_and_its_child_and_releases_spends(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    replaced = spend([(funding.txid, 1)], [(1990, script_for(5))])
    child = spend([(replaced.txid, 0)], [(1980, script_for(7))])
    node.add(replaced, child)
    await mempool.refresh()
    assert mempool.balance_delta(hx(7)) == 1980
    replacement = spend([(funding.txid, 1)], [(1900, script_for(6))])
    node.drop(replaced, child)
    node.add(replacement)
    touched = await mempool.refresh()
    assert touched == {hx(2), hx(5), hx(6), hx(7)}
    assert not mempool.has_tx(replaced.txid) and not mempool.has_tx(child.txid)
    assert mempool.balance_delta(hx(5)) == mempool.balance_delta(hx(7)) == 0
    assert mempool.balance_delta(hx(6)) == 1900
    assert mempool.spender(outpoint(funding, 1)) == replacement.txid
    assert mempool.spender(outpoint(replaced, 0)) is None
    assert mempool.transaction_summaries(hx(5)) == []
    assert mempool.hashXs_with_unconfirmed() == {hx(2), hx(6)}
    assert mempool.tx_count == 1 and mempool.total_vsize == replacement.vsize


@pytest_twisted.ensureDeferred
async def test_a_tx_gone_before_it_is_fetched_is_fetched_again_when_listed_again(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    tx = spend([(funding.txid, 0)], [(990, script_for(7))])
    node.add(tx)
    node.vanished.add(tx.txid_hex)
    assert await mempool.refresh() == set()
    assert mempool.tx_count == 0 and mempool.pending_count == 0
    node.vanished.clear()                   # e.g. evicted, then broadcast again
    assert await mempool.refresh() == {hx(1), hx(7)}
    assert node.fetched_txids() == [tx.txid_hex, tx.txid_hex]


@pytest_twisted.ensureDeferred
async def test_an_unparseable_tx_is_skipped_fetched_once_and_logged_once(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    events = []
    mempool.log = TwistedLogger(observer=events.append)
    node.raw["ee" * 32] = node.served["ee" * 32] = b"\x01\x02garbage"
    good = spend([(funding.txid, 0)], [(990, script_for(7))])
    node.add(good)
    await mempool.refresh()
    await mempool.refresh()
    assert mempool.tx_count == 1 and mempool.has_tx(good.txid)
    assert node.fetched_txids().count("ee" * 32) == 1
    skipped = [e for e in events if e["log_format"].startswith("skipping")]
    assert len(skipped) == 1 and skipped[0]["txid"] == "ee" * 32
    assert mempool.pending_count == 1
    del node.raw["ee" * 32]
    await mempool.refresh()
    assert mempool.pending_count == 0


@pytest_twisted.ensureDeferred
async def test_a_tx_with_an_unknown_input_waits_for_its_parent_without_costing_refreshes(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    parent = spend([(funding.txid, 1)], [(1500, script_for(8))])
    orphan = spend([(parent.txid, 0)], [(1400, script_for(8))])
    node.add(orphan)                        # the node has it before we see its parent
    assert await mempool.refresh() == set()
    assert not mempool.has_tx(orphan.txid) and mempool.pending_count == 1
    fetches, lookups = len(node.fetched), world.lookups
    await mempool.refresh()                 # still no parent: not refetched, not retried
    assert (len(node.fetched), world.lookups) == (fetches, lookups)
    node.add(parent)
    assert await mempool.refresh() == {hx(2), hx(8)}
    assert summary_heights(mempool, hx(8)) == [(parent.txid, 0), (orphan.txid, -1)]
    assert node.fetched_txids().count(orphan.txid_hex) == 1
    assert mempool.pending_count == 0


@pytest_twisted.ensureDeferred
async def test_a_tx_waiting_for_a_parent_resolves_once_the_parent_is_mined(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    parent = spend([(funding.txid, 2)], [(2900, script_for(9))])
    child = spend([(parent.txid, 0)], [(2800, script_for(10))])
    node.add(child)
    await mempool.refresh()
    assert not mempool.has_tx(child.txid)
    assert mempool.on_block(world.mine(parent)) == set()    # nothing of ours was mined
    assert await mempool.refresh() == {hx(9), hx(10)}
    assert mempool.transaction_summaries(hx(10)) == [(child.txid, 0, 100)]


@pytest_twisted.ensureDeferred
async def test_mempool_order_is_protocol_1_6(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    parents = [spend([(funding.txid, i)], [(500, script_for(11)), (400, script_for(11))])
               for i in range(3)]
    children = [spend([(p.txid, 0)], [(450 - i, script_for(11))])
                for i, p in enumerate(parents)]
    node.add(*children, *parents)
    await mempool.refresh()

    def expected(confirmed_parents):
        entries = [(p.txid, 0) for p in parents if p.txid not in confirmed_parents]
        entries += [(c.txid, 0 if p.txid in confirmed_parents else -1)
                    for p, c in zip(parents, children)]
        return sorted(entries, key=lambda e: (-e[1], hash_to_hex_str(e[0])))

    assert summary_heights(mempool, hx(11)) == expected(set())
    assert [h for _t, h in expected(set())] == [0, 0, 0, -1, -1, -1]
    mempool.on_block(world.mine(parents[1]))
    assert summary_heights(mempool, hx(11)) == expected({parents[1].txid})
