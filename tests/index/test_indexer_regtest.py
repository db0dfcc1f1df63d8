"""The indexer following the built-in regtest node over real HTTP: sync, reorgs, failover."""

import pytest
import pytest_twisted

from electrumx.index.block_processor import BlockProcessor
from electrumx.logs import set_log_level

from electrumx.chain.hashes import hash_to_hex_str, hashX_from_scripthash
from electrumx.coins import BitcoinRegtest
from tests.fixtures.blocks import spend, script_for
from tests.fixtures.regtest import reference_digest, tiny_chain, wait_for


def answers_match(db, expected):
    """Compare history, balance and UTXOs with the generator's answers; return mismatches."""
    bad = []
    for scripthash, want in expected.items():
        hashX = hashX_from_scripthash(scripthash)
        history = [[hash_to_hex_str(t), h] for t, h in db.history(hashX)]
        utxos = sorted([[hash_to_hex_str(db.tx_hash(n)), i, db.tx_height(n), v]
                        for n, i, v in db.utxos(hashX)], key=lambda u: (u[2], u[0], u[1]))
        if history != want["history"] or utxos != want["utxos"] or \
                db.balance(hashX) != want["balance"]:
            bad.append(scripthash)
    return bad


@pytest_twisted.ensureDeferred
async def test_sync_then_blocks_arrive(start_node, indexer_for, tmp_path_factory):
    _blocks, expected = tiny_chain(tmp_path_factory)
    node = start_node(reveal=10)
    harness = indexer_for(node)
    caught_up = await harness.caught_up()
    assert caught_up == 10
    node.node.reveal(len(node.node.blocks) - 1)
    await wait_for(lambda: harness.db.height == node.node.height)
    assert answers_match(harness.db, expected) == []
    assert harness.fatal == []
    assert any(height == node.node.height for _touched, height in harness.events)


@pytest_twisted.ensureDeferred
async def test_a_sync_in_small_steps_catches_up_without_waiting_for_a_poll(
        start_node, indexer_for, tmp_path_factory, monkeypatch):
    """A write-ahead and a turn for the reactor after every block: the prefetcher
    finds the node has nothing more while the indexer is busy with the last
    batch, and the indexer must still notice it has caught up, not wait for
    the next block poll (an hour here)."""
    blocks, expected = tiny_chain(tmp_path_factory, "small")
    monkeypatch.setattr(BlockProcessor, "WRITE_AHEAD_BYTES", 0)
    node = start_node(blocks=blocks)
    harness = indexer_for(node, block_poll_secs=3600)
    harness.indexer.YIELD_SECS = 0
    assert await harness.caught_up() == len(blocks) - 1
    assert answers_match(harness.db, expected) == []
    assert harness.fatal == []


@pytest_twisted.ensureDeferred
async def test_reorgs_are_followed(start_node, indexer_for, tmp_path):
    node = start_node()
    harness = indexer_for(node)
    await harness.caught_up()
    # A mempool transaction, then a reorg whose new branch double-spends its input.
    prevout, value, _script = node.node.unspent_outputs(max_height=node.node.height - 4)[0]
    outpoint = (prevout[:32], int.from_bytes(prevout[32:], "little"))
    pay = spend([outpoint], [(value - 1000, script_for(1))])
    double = spend([outpoint], [(value - 2000, script_for(2))])
    node.node.send(pay.serialize())
    await wait_for(lambda: harness.mempool.has_tx(pay.txid))
    fork = node.node.reorg(3, txs=[double.serialize()])
    await wait_for(lambda: harness.db.tip == node.node.tip_hash)
    assert harness.db.height == fork + 4
    hist = harness.db.history(BitcoinRegtest.hashX_from_script(script_for(2)))
    assert [h for _t, h in hist] == [fork + 1]
    await wait_for(lambda: not harness.mempool.has_tx(pay.txid))
    assert harness.fatal == []
    assert harness.db.digest() == reference_digest(
        tmp_path / "reference", node.node.blocks[:node.node.height + 1])


@pytest_twisted.ensureDeferred
async def test_a_reorg_deeper_than_the_undo_data_stops_cleanly(start_node, indexer_for):
    node = start_node()
    harness = indexer_for(node, reorg_limit=2)
    await harness.caught_up()
    before = harness.db.digest()
    node.node.reorg(5)
    await wait_for(lambda: harness.fatal)
    assert "deeper than the undo" in harness.fatal[0]
    assert harness.db.digest() == before


@pytest_twisted.ensureDeferred
async def test_failover_when_a_node_dies_mid_sync(start_node, indexer_for, tmp_path_factory):
    blocks, expected = tiny_chain(tmp_path_factory, "small")
    first = start_node(blocks=blocks, reveal=40)
    second = start_node(blocks=blocks, reveal=40)
    harness = indexer_for(first, second, cache_mb=16)
    await harness.caught_up()
    # The first node dies; the rest of the chain arrives only at the second.
    await first.stop()                      # its connections die with it
    second.node.reveal(len(blocks) - 1)
    await wait_for(lambda: harness.db.height == len(blocks) - 1)
    assert harness.daemon.current_url.port == second.port_number
    assert answers_match(harness.db, expected) == []
    assert harness.fatal == []


@pytest_twisted.ensureDeferred
async def test_scripts_with_over_10000_transactions(start_node, indexer_for, tmp_path_factory):
    blocks, expected = tiny_chain(tmp_path_factory, "medium")
    assert max(len(e["history"]) for e in expected.values()) > 10_000
    node = start_node(blocks=blocks)
    harness = indexer_for(node, cache_mb=16)            # several flushes on the way
    await harness.caught_up(timeout=120)
    assert answers_match(harness.db, expected) == []


@pytest_twisted.ensureDeferred
async def test_a_listing_taken_after_an_unseen_block_waits_for_it(start_node, indexer_for):
    """The node mined the mempool, the index has not fetched the block yet: the
    mempool keeps the transactions rather than dropping them from histories."""
    node = start_node(reveal=20)
    harness = indexer_for(node)
    await harness.caught_up()
    await harness.stop()                            # no block polling from here on
    txids = node.node.add_random_transactions(5)
    mempool = harness.mempool
    harness.db.open()
    try:
        await mempool.refresh()
        assert all(mempool.has_tx(t) for t in txids) and not mempool.node_ahead
        node.node.mine(1)
        assert await mempool.refresh() == set()
        assert mempool.node_ahead and all(mempool.has_tx(t) for t in txids)
    finally:
        harness.db.close()


@pytest.mark.parametrize("level", ["info", "debug"])
@pytest_twisted.ensureDeferred
async def test_a_bug_stops_the_indexer_in_one_line_with_its_traceback_at_debug(
        start_node, indexer_for, log_lines, monkeypatch, level):
    def broken(self, raw):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(BlockProcessor, "advance_block_steps", broken)
    set_log_level(level)
    try:
        harness = indexer_for(start_node(reveal=5))
        await wait_for(lambda: harness.fatal)
    finally:
        set_log_level("info")
    assert harness.fatal == ["a bug of ours"]
    tracebacks = [line for line in log_lines if "Traceback" in line]
    assert bool(tracebacks) == (level == "debug"), log_lines
