"""Our server against a real Bitcoin SV `bitcoind` in regtest, whose wallet made the chain.

The session's node holds ~3,000 wallet transactions over 300 blocks (payments,
sendmany, OP_RETURN, consolidations, chains of unconfirmed spends, some left in
the mempool).  Every answer is checked against what the node itself reports.
Tests that change the chain (a reorg, a broadcast, a failover) check against
the node's state at that moment, so they do not depend on their order.
"""

import collections

import pytest
import pytest_twisted
from twisted.internet import threads

from electrumx.chain.hashes import hash_to_hex_str, hex_str_to_hash
from electrumx.chain.status import status_hash
from tests.fixtures.regtest import wait_for
from tests.realnode.conftest import caught_up, electrum
from tests.realnode.expected import check_against_wallet, read_node, scripthash
from tests.realnode.node import NodeRPCError

pytestmark = pytest.mark.realnode
BATCH = 200


def in_step(controller, node, view=None):
    """True once the server holds exactly the node's chain and mempool."""
    view = view or read_node(node)
    mempool = node.call("getrawmempool")
    return (controller.db.height == view.tip
            and hash_to_hex_str(controller.db.tip) == view.tip_hash
            and controller.mempool.pending_count == 0
            and controller.mempool.tx_count == len(mempool)
            and all(controller.mempool.has_tx(hex_str_to_hash(t)) for t in mempool))


async def synced_view(controller, node, timeout=60):
    """The node's view, once the server has caught up with exactly it."""
    views = []

    def ready():
        views[:] = [read_node(node)]
        return in_step(controller, node, views[0])
    await wait_for(ready, timeout, step=0.2)
    return views[0]


async def assert_answers_match(client, view, scripthashes):
    """History, balance and UTXOs of every script are what the node's chain implies."""
    scripthashes = list(scripthashes)
    for start in range(0, len(scripthashes), BATCH):
        chunk = scripthashes[start:start + BATCH]
        params = [(sh,) for sh in chunk]
        histories = await client.batch("blockchain.scripthash.get_history", params)
        balances = await client.batch("blockchain.scripthash.get_balance", params)
        utxos = await client.batch("blockchain.scripthash.listunspent", params)
        for sh, history, balance, coins in zip(chunk, histories, balances, utxos):
            expected = view.electrum_history(sh)
            confirmed = sum(1 for e in expected if e["height"] > 0)
            assert history[:confirmed] == expected[:confirmed], sh
            by_txid = lambda entries: sorted(entries, key=lambda e: e["tx_hash"])  # noqa: E731
            assert by_txid(history[confirmed:]) == by_txid(expected[confirmed:]), sh
            assert balance == view.balance(sh), sh
            key = lambda u: (u["height"] <= 0, u["height"], u["tx_hash"], u["tx_pos"])  # noqa
            assert sorted(coins, key=key) == view.electrum_utxos(sh), sh


def processed(controller) -> int:
    """The height of the last block the indexer applied (flushed or not)."""
    processor = controller.indexer.processor
    return -1 if processor is None else processor.height


def status_of(history):
    digest = status_hash([(hex_str_to_hash(e["tx_hash"]), e["height"]) for e in history])
    return digest.hex() if digest else None


@pytest_twisted.ensureDeferred
async def test_every_script_the_wallet_used_matches_the_node(chain, servers):
    node = chain.node
    server = await servers([node.url])
    view = await synced_view(server, node)
    coins, listed = check_against_wallet(view, node)
    counts = chain.generated.counts
    assert sum(counts.values()) > 2_500 and view.tip >= 400 and coins > 100 and listed > 2_500
    assert all(counts[kind] for kind in counts), counts
    client = await electrum(server)
    await assert_answers_match(client, view, view.scripts)
    # The node has no fee estimates: the protocol's -1; its relay fee is its own.
    assert await client.call("blockchain.estimatefee", 2) == -1
    assert await client.call("blockchain.relayfee") == \
        node.call("getnetworkinfo")["relayfee"]
    await assert_transactions_served_without_txindex(client, server, node, view)


async def assert_transactions_served_without_txindex(client, server, node, view):
    """The node runs with txindex=0 and takes no block hash (Bitcoin SV 1.0): it finds a
    transaction with an unspent output, but not a spent one, which the server cuts out of
    the block (getblock) at the position from its index.  Each answer is the wallet's."""
    lookup = server.daemon.tx_lookup
    assert (lookup.txindex, lookup.block_hash_arg) == (None, False)
    txids = sorted({txid for entries in view.history.values() for txid, height in entries
                    if height > 0})[:60]
    not_found_by_node = 0
    for txid in txids:
        wallet_hex = node.call("gettransaction", txid)["hex"]
        assert await client.call("blockchain.transaction.get", txid) == wallet_hex
        try:
            node.call("getrawtransaction", txid, 0)
        except NodeRPCError as e:
            assert e.code == -5
            not_found_by_node += 1
    assert not_found_by_node > 0
    verbose = await client.call("blockchain.transaction.get", txids[0], True)
    assert verbose["txid"] == txids[0] and verbose["confirmations"] > 0
    assert verbose["hex"] == node.call("gettransaction", txids[0])["hex"]


@pytest_twisted.ensureDeferred
async def test_a_reorg_by_invalidateblock_is_followed_with_notifications(chain, servers):
    node = chain.node
    server = await servers([node.url])
    await synced_view(server, node)
    client = await electrum(server)
    tip = await client.call("blockchain.headers.subscribe")
    address = chain.generated.addresses[1]
    sh = scripthash(node.call("validateaddress", address)["scriptPubKey"])
    await client.call("blockchain.scripthash.subscribe", sh)

    # Back out two blocks; their transactions return to the mempool.
    node.call("invalidateblock", node.call("getblockhash", tip["height"] - 1))
    paid = node.call("sendtoaddress", address, 1.25)
    new_hashes = node.call("generatetoaddress", 3, chain.generated.miner)
    new_tip = tip["height"] + 1
    assert node.call("getblockcount") == new_tip

    view = await synced_view(server, node)
    header = node.call("getblockheader", new_hashes[-1], False)
    await wait_for(lambda: client.last("blockchain.headers.subscribe") ==
                   [{"hex": header, "height": new_tip}], 30)
    history = await client.call("blockchain.scripthash.get_history", sh)
    assert {"tx_hash": paid, "height": new_tip - 2} in history
    await wait_for(lambda: client.last("blockchain.scripthash.subscribe") ==
                   [sh, status_of(history)], 30)
    await assert_answers_match(client, view, view.scripts)


@pytest_twisted.ensureDeferred
async def test_a_transaction_broadcast_through_the_server_gets_mined(chain, servers):
    node = chain.node
    server = await servers([node.url])
    await synced_view(server, node)
    client = await electrum(server)
    address = node.call("getnewaddress")
    raw = node.call("createrawtransaction", [], {address: 3.5})
    funded = node.call("fundrawtransaction", raw)["hex"]
    signed = node.call("signrawtransaction", funded)["hex"]
    sh = scripthash(node.call("validateaddress", address)["scriptPubKey"])
    await client.call("blockchain.scripthash.subscribe", sh)

    txid = await client.call("blockchain.transaction.broadcast", signed)
    assert txid in node.call("getrawmempool")
    await wait_for(lambda: client.last("blockchain.scripthash.subscribe") is not None, 30)
    assert await client.call("blockchain.scripthash.get_history", sh) == \
        [{"tx_hash": txid, "height": 0, "fee": (await client.call(
            "blockchain.scripthash.get_mempool", sh))[0]["fee"]}]
    height = node.call("getblockcount") + 1
    node.call("generatetoaddress", 1, chain.generated.miner)
    await synced_view(server, node)
    assert await client.call("blockchain.scripthash.get_history", sh) == \
        [{"tx_hash": txid, "height": height}]
    assert await client.call("blockchain.scripthash.get_balance", sh) == \
        {"confirmed": 350_000_000, "unconfirmed": 0}


@pytest_twisted.ensureDeferred
async def test_the_node_stopped_and_restarted_mid_sync(chain, servers):
    node = chain.node
    tip = node.call("getblockcount")
    server = await servers([node.url], wait=False)
    await wait_for(lambda: processed(server) > 0, 60, step=0.001)
    stopped_at = processed(server)
    await threads.deferToThread(node.stop)
    await threads.deferToThread(node.start)
    await caught_up(server)
    assert stopped_at < tip
    view = await synced_view(server, node)
    client = await electrum(server)
    await assert_answers_match(client, view, view.scripts)


@pytest_twisted.ensureDeferred
async def test_failover_between_two_nodes_on_one_chain(chain, servers, spare_nodes):
    node = chain.node
    second = spare_nodes("second")
    # The second node gets the first one's blocks by submitblock: one chain, no P2P.
    tip = node.call("getblockcount")
    hashes = node.batch("getblockhash", [(h,) for h in range(1, tip + 1)])
    for start in range(0, len(hashes), 50):
        blocks = node.batch("getblock", [(h, 0) for h in hashes[start:start + 50]])
        assert set(second.batch("submitblock", [(b,) for b in blocks])) == {None}
    assert second.call("getbestblockhash") == node.call("getbestblockhash")

    server = await servers([second.url, node.url])
    assert server.daemon.current_url.port == second.rpc_port
    client = await electrum(server)
    address = chain.generated.addresses[2]
    sh = scripthash(node.call("validateaddress", address)["scriptPubKey"])
    await client.call("blockchain.scripthash.subscribe", sh)

    second.kill()
    paid = node.call("sendtoaddress", address, 0.75)
    node.call("generatetoaddress", 1, chain.generated.miner)
    view = await synced_view(server, node)
    assert server.daemon.current_url.port == node.rpc_port
    history = await client.call("blockchain.scripthash.get_history", sh)
    assert history[-1] == {"tx_hash": paid, "height": tip + 1}
    await wait_for(lambda: client.last("blockchain.scripthash.subscribe") ==
                   [sh, status_of(history)], 30)
    await assert_answers_match(client, view, [sh])


@pytest_twisted.ensureDeferred
async def test_outpoint_status_from_our_index_on_a_node_without_a_spender_index(
        chain, servers):
    """Protocol 1.7's outpoint status of every output the node's chain and mempool hold.

    The Bitcoin SV node has no `gettxspendingprevout` (nor Core 31's spender index):
    every answer comes from our own index and mempool.  All five states occur:
    confirmed unspent and spent, spent in the mempool, funded in the mempool (and
    spent there, -1), and outputs never indexed (OP_FALSE OP_RETURN) answer {}.
    """
    node = chain.node
    # Earlier tests may have mined the mempool empty: a chain of two spends puts every
    # mempool state there (spent and funded at 0, and at -1 behind an unconfirmed parent).
    first, second = node.call("listunspent", 1, 9_999_999)[:2]
    child = spend(node, first["txid"], first["vout"], first["amount"])
    spend(node, child, 0, round(first["amount"] - 0.001, 8))
    server = await servers([node.url])
    view = await synced_view(server, node)
    client = await electrum(server, "1.7")
    outpoints = list(view.outpoints)
    states = collections.Counter()
    for start in range(0, len(outpoints), BATCH):
        chunk = outpoints[start:start + BATCH]
        params = [(txid, n, view.outpoints[(txid, n)][0]) for txid, n in chunk]
        answers = await client.batch("blockchain.outpoint.get_status", params)
        for (txid, n), answer in zip(chunk, answers):
            assert answer == view.outpoint_status(txid, n), (txid, n)
            states[_state(answer)] += 1
    assert set(states) == {"unknown", "funded", "funded in mempool", "spent",
                           "spent in mempool"}, states
    # An unknown outpoint, and one whose funding transaction has fewer outputs.
    script = view.outpoints[outpoints[-1]][0]
    assert await client.call("blockchain.outpoint.get_status", "11" * 32, 0, script) == {}
    assert await client.call("blockchain.outpoint.get_status", outpoints[-1][0], 10_000,
                             script) == {}

    # A subscription is told when a mempool transaction spends the output, then when a
    # block confirms that spend.
    coin = second
    status = await client.call("blockchain.outpoint.subscribe", coin["txid"], coin["vout"],
                               coin["scriptPubKey"])
    assert status == view.outpoint_status(coin["txid"], coin["vout"])
    spender = spend(node, coin["txid"], coin["vout"], coin["amount"])
    spent_in_mempool = dict(status, spender_txhash=spender, spender_height=0)
    await wait_for(lambda: client.last("blockchain.outpoint.subscribe") ==
                   [coin["txid"], coin["vout"], spent_in_mempool], 30)
    height = node.call("getblockcount") + 1
    node.call("generatetoaddress", 1, chain.generated.miner)
    await wait_for(lambda: client.last("blockchain.outpoint.subscribe") ==
                   [coin["txid"], coin["vout"], dict(status, spender_txhash=spender,
                                                     spender_height=height)], 30)


def spend(node, txid, vout, amount) -> str:
    """Send `amount` less a fee from output `vout` of `txid` to a new wallet address."""
    raw = node.call("createrawtransaction", [{"txid": txid, "vout": vout}],
                    {node.call("getnewaddress"): round(amount - 0.001, 8)})
    return node.call("sendrawtransaction", node.call("signrawtransaction", raw)["hex"])


def _state(answer) -> str:
    if not answer:
        return "unknown"
    spent = "spender_txhash" in answer
    in_mempool = (answer["spender_height"] if spent else answer["funder_height"]) <= 0
    return ("spent" if spent else "funded") + (" in mempool" if in_mempool else "")
