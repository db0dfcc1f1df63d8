"""The mempool never mixes two index tips: blocks that conflict with it, reorgs,
an index that moves while a refresh is fetching, and hooks that were not called."""

import pytest
import pytest_twisted

from tests.fixtures.blocks import script_for, spend
from tests.index.test_mempool import World, hx, outpoint


@pytest.fixture
def world(tmp_path):
    world = World(tmp_path)
    yield world
    world.close()


class DoubleSpend:
    """In the mempool: `loser` (script 2 -> 5), its `child` (5 -> 6) and an unrelated
    `keeper` (1 -> 7); then a block whose `winner` spends the loser's input."""

    async def setup(self, world):
        funding = world.funding
        self.loser = spend([(funding.txid, 1)], [(1900, script_for(5))])
        self.child = spend([(self.loser.txid, 0)], [(1800, script_for(6))])
        self.keeper = spend([(funding.txid, 0)], [(900, script_for(7))])
        world.node.add(self.loser, self.child, self.keeper)
        await world.mempool.refresh()
        assert world.mempool.balance_delta(hx(2)) == -2000
        self.winner = spend([(funding.txid, 1)], [(1950, script_for(8))])
        self.mined = world.mine(self.winner)
        world.node.drop(self.loser, self.child)         # the node evicts the conflicts
        return self

    def assert_conflicts_left(self, world):
        mempool = world.mempool
        assert not mempool.has_tx(self.loser.txid) and not mempool.has_tx(self.child.txid)
        assert mempool.has_tx(self.keeper.txid)
        # The block spent script 2's output: the mempool must not spend it a second time.
        assert mempool.balance_delta(hx(2)) == 0
        assert mempool.spender(outpoint(world.funding, 1)) is None
        assert mempool.transaction_summaries(hx(5)) == mempool.transaction_summaries(hx(6)) == []
        assert mempool.hashXs_with_unconfirmed() == {hx(1), hx(7)}
        assert mempool.tx_count == 1 and mempool.total_vsize == self.keeper.vsize


@pytest_twisted.ensureDeferred
async def test_a_block_spending_a_mempool_input_drops_the_tx_and_its_child_at_once(world):
    case = await DoubleSpend().setup(world)
    assert world.mempool.on_block(case.mined) == {hx(2), hx(5), hx(6)}
    case.assert_conflicts_left(world)
    # The next listing no longer has them: forgotten, not retried.
    assert await world.mempool.refresh() == set()
    assert world.mempool.pending_count == 0


@pytest_twisted.ensureDeferred
async def test_without_the_hook_answers_still_follow_the_index(world):
    case = await DoubleSpend().setup(world)
    case.assert_conflicts_left(world)               # no on_block: queries catch up
    assert await world.mempool.refresh() == {hx(2), hx(5), hx(6)}    # reported once
    assert await world.mempool.refresh() == set()


@pytest_twisted.ensureDeferred
async def test_more_blocks_than_undo_records_fall_back_to_rechecking_every_input(world):
    case = await DoubleSpend().setup(world)
    for _ in range(12):                             # past the reorg limit of 10
        world.mine()
    assert not world.db.has_undo(2)                 # the block with the winner
    case.assert_conflicts_left(world)
    assert await world.mempool.refresh() == {hx(2), hx(5), hx(6)}


@pytest_twisted.ensureDeferred
async def test_a_reorg_puts_aside_txs_spending_backed_out_outputs_until_they_resolve(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    parent = spend([(funding.txid, 0)], [(900, script_for(4))])
    child = spend([(parent.txid, 0)], [(800, script_for(5))])
    mempool.on_block(world.mine(parent))
    node.add(child)
    await mempool.refresh()
    assert mempool.transaction_summaries(hx(5)) == [(child.txid, 0, 100)]
    world.back_out(parent)                          # the node takes the parent back
    assert mempool.on_reorg() == {hx(4), hx(5)}
    assert not mempool.has_tx(child.txid) and mempool.balance_delta(hx(4)) == 0
    assert await mempool.refresh() == {hx(1), hx(4), hx(5)}
    assert [h for _t, h, _f in mempool.transaction_summaries(hx(4))] == [0, -1]
    assert mempool.transaction_summaries(hx(5)) == [(child.txid, -1, 100)]
    assert node.fetched_txids().count(child.txid_hex) == 1      # never refetched


@pytest_twisted.ensureDeferred
async def test_a_reorg_to_a_sibling_block_without_hooks_is_caught(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    parent = spend([(funding.txid, 0)], [(900, script_for(4))])
    child = spend([(parent.txid, 0)], [(800, script_for(5))])
    world.mine(parent)
    node.add(child)
    await mempool.refresh()
    height = world.db.height
    world.back_out(parent)
    world.mine()                                    # same height, another block
    assert world.db.height == height
    assert not mempool.has_tx(child.txid)           # its parent is unconfirmed again
    assert await mempool.refresh() == {hx(1), hx(4), hx(5)}
    assert mempool.transaction_summaries(hx(5)) == [(child.txid, -1, 100)]


@pytest_twisted.ensureDeferred
async def test_a_listing_taken_while_the_index_moved_is_taken_again(world):
    mempool, node, funding = world.mempool, world.node, world.funding
    parent = spend([(funding.txid, 0)], [(900, script_for(4))])
    child = spend([(parent.txid, 0)], [(800, script_for(5))])
    node.add(parent, child)

    def block_arrives():                            # as the indexer would do it
        mempool.on_block(world.mine(parent))

    node.during_fetch = block_arrives
    assert await mempool.refresh() == {hx(4), hx(5)}
    assert len(node.fetched) == 1                   # the second listing fetched nothing
    assert not mempool.has_tx(parent.txid)
    assert mempool.transaction_summaries(hx(5)) == [(child.txid, 0, 100)]
    assert mempool.pending_count == 0
