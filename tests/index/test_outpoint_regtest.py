"""Outpoint status through the mempool, blocks and reorgs, following the built-in regtest
node over real HTTP: every state a client can see, and every move between them."""

import pytest_twisted

from electrumx.chain.outpoint import UNKNOWN, OutpointStatus
from electrumx.chain.script import null_data_script
from electrumx.coins import BitcoinRegtest
from electrumx.index.db import IndexDB
from electrumx.index.read_api import ChainReader
from tests.fixtures.blocks import script_for, spend
from tests.fixtures.outpoints import chain_outpoints, differences
from tests.fixtures.regtest import tiny_chain, wait_for

COIN = BitcoinRegtest


def hx(n):
    return COIN.hashX_from_script(script_for(n))


async def send(harness, node, tx):
    node.send(tx.serialize())
    await wait_for(lambda: harness.mempool.has_tx(tx.txid))
    return tx


async def at_node_tip(harness, node):
    await wait_for(lambda: harness.db.tip == node.tip_hash)


@pytest_twisted.ensureDeferred
async def test_every_state_through_mempool_blocks_and_reorgs(start_node, indexer_for):
    running = start_node()
    node = running.node
    harness = indexer_for(running)
    await harness.caught_up()
    reader = ChainReader(harness.db, harness.mempool, harness.daemon)

    def status(txid, idx):
        return reader.outpoint_status(txid, idx)

    prevout, value, script = node.unspent_outputs(max_height=node.height - 4)[0]
    u_txid, u_idx = prevout[:32], int.from_bytes(prevout[32:], "little")
    confirmed = chain_outpoints(COIN, node.blocks[:node.height + 1])[prevout]
    u_height = confirmed.funder_height
    assert confirmed == OutpointStatus(u_height, COIN.hashX_from_script(script))
    assert status(u_txid, u_idx) == confirmed

    # Funded and spent in the mempool: A spends U, B spends A (so B's height is -1).
    a = await send(harness, node, spend([(u_txid, u_idx)], [
        (value - 3000, script_for(1)), (0, null_data_script(b"no coins here"))]))
    assert status(u_txid, u_idx) == OutpointStatus(u_height, confirmed.funder_hashX, a.txid, 0)
    assert status(a.txid, 0) == OutpointStatus(0, hx(1))
    assert status(a.txid, 1) == UNKNOWN                      # OP_RETURN
    assert status(a.txid, 2) == UNKNOWN                      # past the last output
    b = await send(harness, node, spend([(a.txid, 0)], [(value - 6000, script_for(2))]))
    assert status(a.txid, 0) == OutpointStatus(0, hx(1), b.txid, -1)
    assert status(b.txid, 0) == OutpointStatus(-1, hx(2))
    assert reader.recent_mempool(2) == [(b.txid, node.fee_of(b.txid), b.vsize),
                                        (a.txid, node.fee_of(a.txid), a.vsize)]
    assert reader.recent_mempool(1) == reader.recent_mempool(2)[:1]
    assert reader.recent_mempool(0) == []

    # Mined: both confirmed in one block.
    node.mine(1)
    await at_node_tip(harness, node)
    height = node.height
    assert status(u_txid, u_idx) == OutpointStatus(u_height, confirmed.funder_hashX,
                                                   a.txid, height)
    assert status(a.txid, 0) == OutpointStatus(height, hx(1), b.txid, height)
    assert status(b.txid, 0) == OutpointStatus(height, hx(2))
    assert status(a.txid, 1) == UNKNOWN
    # A confirmed output spent in the mempool (height 0: its parent is confirmed).
    c = await send(harness, node, spend([(b.txid, 0)], [(value - 9000, script_for(3))]))
    assert status(b.txid, 0) == OutpointStatus(height, hx(2), c.txid, 0)

    # A reorg returns A and B to the mempool: confirmed spends and fundings go back
    # to mempool ones.
    node.reorg(1)
    await at_node_tip(harness, node)
    await wait_for(lambda: all(harness.mempool.has_tx(t.txid) for t in (a, b, c)))
    assert status(u_txid, u_idx) == OutpointStatus(u_height, confirmed.funder_hashX, a.txid, 0)
    assert status(a.txid, 0) == OutpointStatus(0, hx(1), b.txid, -1)
    assert status(b.txid, 0) == OutpointStatus(-1, hx(2), c.txid, -1)

    # A reorg whose new branch double-spends U: A's outputs and descendants are gone.
    double = spend([(u_txid, u_idx)], [(value - 5000, script_for(4))])
    fork = node.reorg(1, txs=[double.serialize()])
    await at_node_tip(harness, node)
    await wait_for(lambda: not harness.mempool.has_tx(a.txid))
    assert status(u_txid, u_idx) == OutpointStatus(u_height, confirmed.funder_hashX,
                                                   double.txid, fork + 1)
    assert status(a.txid, 0) == UNKNOWN and status(b.txid, 0) == UNKNOWN
    assert status(double.txid, 0) == OutpointStatus(fork + 1, hx(4))

    # A reorg that takes the double spend out of the chain, and a node that then forgets
    # it: U is unspent again.
    node.reorg(2)
    await at_node_tip(harness, node)
    await wait_for(lambda: harness.mempool.has_tx(double.txid))
    assert status(u_txid, u_idx) == OutpointStatus(u_height, confirmed.funder_hashX,
                                                   double.txid, 0)
    assert status(double.txid, 0) == OutpointStatus(0, hx(4))
    node.drop_from_mempool(double.txid)
    await wait_for(lambda: not harness.mempool.has_tx(double.txid))
    assert status(u_txid, u_idx) == confirmed
    assert status(double.txid, 0) == UNKNOWN
    assert harness.fatal == []


@pytest_twisted.ensureDeferred
async def test_a_sync_in_several_flushes_answers_every_output(
        start_node, indexer_for, tmp_path_factory, monkeypatch):
    """The small chain synced with a small cache (outputs created and spent between
    two flushes, and across them), then reopened: every output's status is the one
    worked out from the raw blocks."""
    blocks, _expected = tiny_chain(tmp_path_factory, "small")
    commits = []
    real_commit = IndexDB.commit
    monkeypatch.setattr(IndexDB, "commit", lambda db, state, *rest: (
        commits.append(state.height), real_commit(db, state, *rest))[1])
    running = start_node(blocks=blocks)
    harness = indexer_for(running, cache_mb=0.25)          # a flush every 256 KB
    await harness.caught_up(timeout=120)
    assert len([h for h in commits if h < len(blocks) - 1]) >= 3
    await harness.stop()
    harness.db.open()
    try:
        reader = ChainReader(harness.db, None, None)
        expected = chain_outpoints(COIN, blocks)
        assert sum(s.spender_txid is not None for s in expected.values()) > 1000
        assert differences(reader, expected) == []
    finally:
        harness.db.close()
