"""blockchain.transaction.get's fetch path against the built-in node, over real HTTP and a
real index: without txindex (the block hash from our index), with it, and with a node that
refuses the block hash (getblock and the position from our index); the raw cache, and
what a reorg does to it."""

import pytest
import pytest_twisted
from twisted.internet import defer

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.tx import deserialize_block_txs
from electrumx.index.read_api import ChainReader
from electrumx.interfaces import DaemonError
from tests.fixtures.blocks import script_for, spend
from tests.fixtures.regtest import wait_for


async def reader_for(start_node, indexer_for, **node_options):
    running = start_node()
    for name, value in node_options.items():
        setattr(running.node, name, value)
    harness = indexer_for(running)
    await harness.caught_up()
    count_fetches(harness.daemon)
    return running, harness, ChainReader(harness.db, harness.mempool, harness.daemon)


def tx_of_block(node, height, n=1):
    """(txid hex, raw hex) of the nth transaction of the shown block at `height`."""
    tx = deserialize_block_txs(node.blocks[height])[n]
    return tx.txid_hex, tx.serialize().hex()


def count_fetches(daemon):
    """Count the daemon's getrawtransaction and getblock calls (the indexer's polls go
    on meanwhile, so its request count would not do); the calls still go to the node."""
    daemon.fetches = 0
    for name in ("raw_transaction", "raw_blocks"):
        def counted(*args, _real=getattr(daemon, name), **kwargs):
            daemon.fetches += 1
            return _real(*args, **kwargs)
        setattr(daemon, name, counted)


async def node_requests(harness, fetch):
    """(answer, node fetches) of `fetch()`."""
    before = harness.daemon.fetches
    answer = await fetch()
    return answer, harness.daemon.fetches - before


@pytest.mark.parametrize("txindex", [False, True])
@pytest_twisted.ensureDeferred
async def test_confirmed_and_mempool_transactions_with_and_without_txindex(
        start_node, indexer_for, txindex):
    running, harness, reader = await reader_for(start_node, indexer_for, txindex=txindex)
    assert harness.daemon.tx_lookup.txindex is txindex
    node = running.node
    txid, raw = tx_of_block(node, 5)
    assert await reader.raw_transaction(txid) == raw
    verbose = await reader.raw_transaction(txid, True)
    assert verbose["hex"] == raw and verbose["confirmations"] == node.height - 4
    assert verbose["blockhash"] == hash_to_hex_str(node.hashes[5])
    assert "in_active_chain" not in verbose         # the block hash was ours, not asked
    prevout, value, _script = node.unspent_outputs()[0]
    pending = spend([(prevout[:32], int.from_bytes(prevout[32:], "little"))],
                         [(value - 5000, script_for(1))])
    node.send(pending.serialize())
    await wait_for(lambda: harness.mempool.has_tx(pending.txid))
    assert await reader.raw_transaction(pending.txid_hex) == pending.serialize().hex()
    assert "confirmations" not in await reader.raw_transaction(pending.txid_hex, True)
    with pytest.raises(DaemonError) as caught:
        await reader.raw_transaction("ab" * 32)
    assert caught.value.code == -5


@pytest_twisted.ensureDeferred
async def test_a_node_refusing_the_block_hash_is_sent_getblock_once_per_block(
        start_node, indexer_for):
    running, harness, reader = await reader_for(start_node, indexer_for,
                                                block_hash_arg=False)
    assert harness.daemon.tx_lookup.block_hash_arg is False
    node = running.node
    count = len(deserialize_block_txs(node.blocks[7]))
    wanted = [tx_of_block(node, 7, n) for n in range(count)]
    answers, requests = await node_requests(harness, lambda: defer.gatherResults(
        [reader.raw_transaction(txid) for txid, _raw in wanted]))
    assert answers == [raw for _txid, raw in wanted]
    assert requests == 1                            # one getblock for them all
    verbose = await reader.raw_transaction(wanted[-1][0], True)
    assert verbose["txid"] == wanted[-1][0] and verbose["hex"] == wanted[-1][1]
    assert verbose["blockhash"] == hash_to_hex_str(node.hashes[7])
    assert verbose["confirmations"] == node.height - 6
    assert verbose["time"] == verbose["blocktime"] == node.header(7).timestamp


@pytest_twisted.ensureDeferred
async def test_the_cache_answers_again_and_a_reorg_makes_its_entries_stale(
        start_node, indexer_for):
    running, harness, reader = await reader_for(start_node, indexer_for)
    node = running.node
    old = tx_of_block(node, 10)
    coinbase = tx_of_block(node, node.height, 0)
    for txid, raw in (old, coinbase):
        assert (await node_requests(harness, lambda: reader.raw_transaction(txid))) == (raw, 1)
        assert (await node_requests(harness, lambda: reader.raw_transaction(txid))) == (raw, 0)
    tip = node.height
    node.reorg(1)
    await wait_for(lambda: harness.db.height == tip + 1)
    # The tip's coinbase is gone with its block: its cached bytes must not be served.
    with pytest.raises(DaemonError):
        await reader.raw_transaction(coinbase[0])
    assert (await node_requests(harness, lambda: reader.raw_transaction(old[0]))) == (old[1], 0)


@pytest_twisted.ensureDeferred
async def test_a_client_giving_up_does_not_cancel_the_getblock_others_wait_for(
        start_node, indexer_for):
    running, harness, reader = await reader_for(start_node, indexer_for,
                                                block_hash_arg=False)
    node = running.node
    (first, _raw), (second, raw) = tx_of_block(node, 8, 0), tx_of_block(node, 8, 1)
    gone = reader.raw_transaction(first)
    waiting = reader.raw_transaction(second)
    gone.cancel()
    with pytest.raises(defer.CancelledError):
        await gone
    assert await waiting == raw
