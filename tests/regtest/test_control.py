"""Playing the network: reveal, mine, reorganise, churn, replace and drop (RPC and in-process)."""

import random

import pytest
import pytest_twisted

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.tx import deserialize_block_txs
from electrumx.regtest.node import NodeError, RegtestNode
from tests.fixtures.blocks import script_for, spend

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


def assert_utxos_match_a_fresh_recount(node):
    """The node's incrementally kept UTXO set equals one built from its blocks."""
    fresh = RegtestNode(node.blocks[:node.height + 1])
    spent_in_mempool = set(node.mempool.spenders)
    want = {o: v for o, v, _s in fresh.unspent_outputs() if o not in spent_in_mempool}
    assert {o: v for o, v, _s in node.unspent_outputs()} == want


@pytest_twisted.ensureDeferred
async def test_reveal_mine_and_reorg_over_rpc(start_node, node_client):
    running = start_node(reveal=5)
    rpc = node_client(running)
    assert await rpc.result("getblockcount") == 5
    assert await rpc.result("regtest_reveal", 8) == 8
    assert await rpc.result("regtest_reveal", 10 ** 6) == len(running.node.blocks) - 1
    old_tip = hash_to_hex_str(running.node.tip_hash)
    status = await rpc.result("regtest_status")
    fork = await rpc.result("regtest_reorg", 2)
    assert fork == status["height"] - 2 and running.node.height == fork + 3
    header = await rpc.result("getblockheader", old_tip)
    assert header["confirmations"] == -1                          # on a stale branch now
    assert (await rpc.result("getblock", old_tip, 0)) is not None
    status = await rpc.result("regtest_status")
    assert status["stale"] == 2 and status["mempool"] > 0        # the old blocks' txs
    hashes = await rpc.result("regtest_mine", 2, 5)
    assert len(hashes) == 2 and await rpc.result("getbestblockhash") == hashes[-1]
    block = await rpc.result("getblock", hashes[0])
    assert len(block["tx"]) == 1 + status["mempool"] + 5         # coinbase, pool, 5 new
    assert len((await rpc.result("getblock", hashes[1]))["tx"]) == 1 + 5
    status, _r, err = await rpc.call("regtest_reorg", 0)
    assert err["code"] == -8
    assert_utxos_match_a_fresh_recount(running.node)


@pytest_twisted.ensureDeferred
async def test_mempool_levers_over_rpc(regtest_node, node_client):
    rpc = node_client(regtest_node)
    txids = await rpc.result("regtest_churn", 40, 3)
    assert len(txids) == 40
    pool = await rpc.result("getrawmempool", True)
    assert set(pool) == set(txids)
    chained = [t for t, entry in pool.items() if entry["depends"]]
    assert chained                                              # some unconfirmed chains
    parent = pool[chained[0]]["depends"][0]
    fee_before = pool[parent]["fees"]["base"]
    replacement = await rpc.result("regtest_replace", parent, 2000)
    pool = await rpc.result("getrawmempool", True)
    assert parent not in pool and chained[0] not in pool and replacement in pool
    assert pool[replacement]["fees"]["base"] > fee_before
    victim = next(iter(pool))
    dropped = await rpc.result("regtest_drop", victim)
    assert victim in dropped and not set(dropped) & set(await rpc.result("getrawmempool"))
    await rpc.result("regtest_mine", 1)
    assert await rpc.result("getrawmempool") == []
    _s, _r, err = await rpc.call("regtest_replace", victim)
    assert err["code"] == -5
    assert_utxos_match_a_fresh_recount(regtest_node.node)


@pytest_twisted.ensureDeferred
async def test_mining_part_of_a_big_mempool_keeps_parents_first(regtest_node, node_client):
    rpc = node_client(regtest_node)
    await rpc.result("regtest_churn", 300, 5)
    pool = await rpc.result("getrawmempool", True)
    assert len(pool) > 150 and any(entry["depends"] for entry in pool.values())
    for _ in range(3):
        before = set(await rpc.result("getrawmempool"))
        [block_hash] = await rpc.result("regtest_mine", 1, 0, None, 50)
        mined = (await rpc.result("getblock", block_hash))["tx"][1:]
        assert len(mined) == 50 and set(mined) <= before
        position = {txid: n for n, txid in enumerate(mined)}
        for txid in mined:
            for parent in pool[txid]["depends"]:         # mined before, or earlier here
                assert parent not in before or position.get(parent, 1e9) < position[txid]
        assert set(await rpc.result("getrawmempool")) == before - set(mined)
    assert_utxos_match_a_fresh_recount(regtest_node.node)


def test_churn_until_the_outputs_run_out_never_fails(start_node):
    node = start_node().node
    while node.add_random_transactions(200):
        pass
    assert len(node.mempool) > 0
    assert_utxos_match_a_fresh_recount(node)


def test_rbf_replaces_only_for_a_higher_fee(start_node):
    node = start_node().node
    prevout, value, _script = node.unspent_outputs()[0]
    outpoint = (prevout[:32], int.from_bytes(prevout[32:], "little"))
    first = spend([outpoint], [(value - 5000, script_for(1))])
    node.send(first.serialize())
    child = spend([(first.txid, 0)], [(value - 10_000, script_for(2))])
    node.send(child.serialize())
    for fee in (4000, 5000, 10_000):          # must beat the parent and child together
        low = spend([outpoint], [(value - fee, script_for(3))])
        with pytest.raises(NodeError) as e:
            node.send(low.serialize())
        assert (e.value.code, e.value.message) == (-26, "txn-mempool-conflict")
    high = spend([outpoint], [(value - 20_000, script_for(4))])
    node.send(high.serialize())
    assert list(node.mempool) == [high.txid]
    spends_replaced = spend([outpoint, (first.txid, 1)], [(1000, script_for(5))])
    with pytest.raises(NodeError):
        node.send(spends_replaced.serialize())


def test_reorg_returns_transactions_to_the_mempool_unless_double_spent(start_node):
    node = start_node().node
    rng = random.Random(5)
    node.add_random_transactions(10, rng, chain_fraction=0)
    node.mine(1)
    mined = [tx.txid for tx in deserialize_block_txs(node.blocks[node.height])[1:]]
    pending = node.add_random_transactions(6, rng, chain_fraction=0)
    fork = node.reorg(1, new_blocks=2, double_spends=4, rng=rng)
    assert node.height == fork + 2
    first_new = deserialize_block_txs(node.blocks[fork + 1])[1:]
    assert len(first_new) == 4
    double_spent = {i.prevout for tx in first_new for i in tx.inputs}
    for txid in mined + pending:
        if txid in node.mempool:
            tx = node.mempool.get(txid)
            assert not {i.prevout for i in tx.inputs} & double_spent
    gone = [t for t in mined + pending if t not in node.mempool]
    assert len(gone) == 4                  # exactly the double-spent ones (no chains here)
    assert_utxos_match_a_fresh_recount(node)
    node.mine(1)
    assert len(node.mempool) == 0
    assert_utxos_match_a_fresh_recount(node)


def test_a_reorg_with_invalid_transactions_changes_nothing(start_node):
    node = start_node().node
    tip, height = node.tip_hash, node.height
    bad = spend([(b"\x07" * 32, 0)], [(1000, script_for(1))])
    with pytest.raises(NodeError):
        node.reorg(3, txs=[bad.serialize()])
    with pytest.raises(NodeError):
        node.reorg(3, txs=[b"\x00\x01"])
    assert (node.tip_hash, node.height) == (tip, height) and not node.stale_blocks
    assert_utxos_match_a_fresh_recount(node)
    assert node.find_tx(deserialize_block_txs(node.blocks[height])[0].txid)[1] == height


def test_mining_on_a_prefix_discards_the_pregenerated_rest(start_node):
    running = start_node(reveal=10)
    node = running.node
    [new_hash] = node.mine(1)
    assert node.height == 11 and len(node.blocks) == 12 and node.tip_hash == new_hash
    assert node.reveal(20) == 11


@pytest_twisted.ensureDeferred
async def test_rewind_hides_blocks_as_a_restarted_node_lacks_them(start_node, node_client):
    running = start_node()
    node, rpc = running.node, node_client(running)
    top, hashes = node.height, [hash_to_hex_str(h) for h in node.hashes]
    node.add_random_transactions(5)
    assert await rpc.result("regtest_rewind", 20) == 20
    assert await rpc.result("getblockcount") == 20 and len(node.mempool) == 0
    _s, _r, err = await rpc.call("getblockheader", hashes[top])
    assert err["code"] == -5                            # unknown, not stale
    _s, _r, err = await rpc.call("getblockhash", 21)
    assert err["code"] == -8
    assert_utxos_match_a_fresh_recount(node)
    assert await rpc.result("regtest_rewind", 0) == 0   # reindexing from genesis
    assert await rpc.result("regtest_reveal", top) == top
    assert [hash_to_hex_str(h) for h in node.hashes] == hashes
    assert (await rpc.result("getblockheader", hashes[top]))["confirmations"] == 1
    assert_utxos_match_a_fresh_recount(node)
    assert await rpc.result("regtest_rewind", top + 5) == top     # nothing to hide
    for bad in (-1, "3", True):
        _s, _r, err = await rpc.call("regtest_rewind", bad)
        assert err["code"] in (-3, -8)
