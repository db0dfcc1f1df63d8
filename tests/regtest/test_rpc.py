"""The regtest node's bitcoind methods over real HTTP on 127.0.0.1: answers and shapes."""

import pytest
import pytest_twisted
from twisted.internet import defer

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.tx import parse_block_txs
from electrumx.coins import BitcoinRegtest
from electrumx.regtest.chain import subsidy
from tests.fixtures.blocks import script_for, spend
from tests.fixtures.regtest import wait_for

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


def outpoint_of(prevout):
    return prevout[:32], int.from_bytes(prevout[32:], "little")


@pytest_twisted.ensureDeferred
async def test_walk_the_chain_from_genesis(regtest_node, node_client):
    rpc = node_client(regtest_node)
    height = await rpc.result("getblockcount")
    assert height == regtest_node.node.height
    info = await rpc.result("getblockchaininfo")
    assert info["chain"] == "regtest" and info["blocks"] == info["headers"] == height
    prev = None
    for h in range(height + 1):
        block_hash = await rpc.result("getblockhash", h)
        block = await rpc.result("getblock", block_hash, 1)
        assert block["height"] == h and block.get("previousblockhash") == prev
        assert block["confirmations"] == height - h + 1 and block["nTx"] == len(block["tx"])
        raw = bytes.fromhex(await rpc.result("getblock", block_hash, 0))
        assert raw == regtest_node.node.blocks[h] and block["size"] == len(raw)
        assert [hash_to_hex_str(t[0]) for t in parse_block_txs(raw)] == block["tx"]
        prev = block_hash
    assert await rpc.result("getbestblockhash") == prev == info["bestblockhash"]
    assert len(await rpc.result("getblockheader", prev, False)) == 160
    header = await rpc.result("getblockheader", prev)
    assert header["height"] == height and "nextblockhash" not in header
    assert header["bits"] == "207fffff" and header["chainwork"] == f"{2 * (height + 1):064x}"


@pytest_twisted.ensureDeferred
async def test_getblock_verbosity_2_and_confirmed_transactions(start_node, node_client):
    regtest_node = start_node(txindex=True)
    rpc = node_client(regtest_node)
    block_hash = await rpc.result("getblockhash", 5)
    block = await rpc.result("getblock", block_hash, 2)
    coinbase, tx = block["tx"][0], block["tx"][1]
    assert "coinbase" in coinbase["vin"][0]
    assert block["weight"] == 3 * block["strippedsize"] + block["size"]
    verbose = await rpc.result("getrawtransaction", tx["txid"], 1)
    assert verbose["blockhash"] == block_hash and verbose["confirmations"] == \
        regtest_node.node.height - 4
    assert verbose["time"] == verbose["blocktime"] == block["time"]
    assert verbose["hex"] == tx["hex"] == await rpc.result("getrawtransaction", tx["txid"])
    out = verbose["vout"][0]["scriptPubKey"]
    assert out["type"] in {"pubkeyhash", "scripthash", "witness_v0_keyhash", "pubkey",
                           "witness_v0_scripthash", "witness_v1_taproot"}
    in_block = await rpc.result("getrawtransaction", tx["txid"], True, block_hash)
    assert in_block["in_active_chain"] is True


@pytest_twisted.ensureDeferred
async def test_without_txindex_a_confirmed_transaction_needs_its_block_hash(start_node,
                                                                           node_client):
    """As bitcoind with txindex=0; and a node refusing the block hash, as older ones do."""
    running = start_node()
    rpc = node_client(running)
    block_hash = await rpc.result("getblockhash", 5)
    txid = (await rpc.result("getblock", block_hash))["tx"][1]
    _status, _result, error = await rpc.call("getrawtransaction", txid, 0)
    assert error["code"] == -5 and "Use -txindex or provide a block hash" in error["message"]
    raw = await rpc.result("getrawtransaction", txid, 0, block_hash)
    decoded = await rpc.result("decoderawtransaction", raw)
    assert decoded["txid"] == txid and "hex" not in decoded
    running.node.txindex = True
    assert await rpc.result("getrawtransaction", txid, 0) == raw
    assert "txindex" in await rpc.result("getindexinfo")
    running.node.block_hash_arg = False
    _status, _result, error = await rpc.call("getrawtransaction", txid, 0, block_hash)
    assert error["code"] == -1


@pytest_twisted.ensureDeferred
async def test_transactions_and_the_mempool(regtest_node, node_client):
    rpc = node_client(regtest_node)
    prevout, value, _script = regtest_node.node.unspent_outputs()[0]
    tx = spend([outpoint_of(prevout)], [(value - 5000, script_for(1))])
    txid = await rpc.result("sendrawtransaction", tx.serialize().hex())
    assert txid == tx.txid_hex
    assert await rpc.result("sendrawtransaction", tx.serialize().hex()) == txid  # again: fine
    assert await rpc.result("getrawmempool") == [txid]
    entry = (await rpc.result("getrawmempool", True))[txid]
    assert entry["fees"]["base"] == pytest.approx(5000 / 1e8) and entry["depends"] == []
    assert entry["vsize"] == tx.vsize and entry["ancestorcount"] == 1
    assert (await rpc.result("getmempoolentry", txid))["wtxid"] == hash_to_hex_str(tx.wtxid)
    info = await rpc.result("getmempoolinfo")
    assert info["size"] == 1 and info["bytes"] == tx.vsize
    assert await rpc.result("getrawtransaction", txid, 0) == tx.serialize().hex()
    mempool_verbose = await rpc.result("getrawtransaction", txid, 1)
    assert "blockhash" not in mempool_verbose and "confirmations" not in mempool_verbose
    # A child makes an unconfirmed chain.
    child = spend([(tx.txid, 0)], [(value - 8000, script_for(2))])
    await rpc.result("sendrawtransaction", child.serialize().hex())
    pool = await rpc.result("getrawmempool", True)
    assert pool[child.txid_hex]["depends"] == [txid]
    assert pool[txid]["spentby"] == [child.txid_hex]
    assert pool[txid]["descendantcount"] == 2
    accept = await rpc.result("testmempoolaccept", [child.serialize().hex()])
    assert accept[0]["allowed"] is False
    # Mining confirms both, in order.
    address = BitcoinRegtest.script_to_address(script_for(9))
    hashes = await rpc.result("generatetoaddress", 1, address)
    verbose_tx = await rpc.result("getrawtransaction", child.txid_hex, 1, hashes[0])
    assert verbose_tx["blockhash"] == hashes[0] and verbose_tx["confirmations"] == 1
    block = await rpc.result("getblock", hashes[0])
    assert block["tx"][1:] == [txid, child.txid_hex]
    coinbase = await rpc.result("getrawtransaction", block["tx"][0], 1, hashes[0])
    assert coinbase["vout"][0]["scriptPubKey"]["address"] == address
    reward = subsidy(regtest_node.node.height) + 8000
    assert coinbase["vout"][0]["value"] == pytest.approx(reward / 1e8)
    assert await rpc.result("getrawmempool") == []


@pytest_twisted.ensureDeferred
async def test_testmempoolaccept_says_what_would_happen(regtest_node, node_client):
    rpc = node_client(regtest_node)
    prevout, value, _script = regtest_node.node.unspent_outputs()[1]
    good = spend([outpoint_of(prevout)], [(value - 3000, script_for(1))])
    [answer] = await rpc.result("testmempoolaccept", [good.serialize().hex()])
    assert answer["allowed"] is True and answer["txid"] == good.txid_hex
    assert answer["fees"]["base"] == pytest.approx(3000 / 1e8)
    assert await rpc.result("getrawmempool") == []              # only a test
    cheap = spend([outpoint_of(prevout)], [(value - 1, script_for(1))])
    [answer] = await rpc.result("testmempoolaccept", [cheap.serialize().hex()])
    assert answer["allowed"] is False and answer["reject-reason"].startswith("min relay fee")


@pytest_twisted.ensureDeferred
async def test_submitpackage_takes_a_child_with_its_parent(regtest_node, node_client):
    rpc = node_client(regtest_node)
    prevout, value, _script = regtest_node.node.unspent_outputs()[1]
    parent = spend([outpoint_of(prevout)], [(value - 3000, script_for(1))])
    child = spend([(parent.txid, 0)], [(value - 6000, script_for(2))])
    answer = await rpc.result("submitpackage", [parent.serialize().hex(),
                                                child.serialize().hex()])
    assert answer["package_msg"] == "success" and answer["replaced-transactions"] == []
    assert [r["txid"] for r in answer["tx-results"].values()] == [parent.txid_hex,
                                                                  child.txid_hex]
    assert answer["tx-results"][hash_to_hex_str(child.wtxid)]["fees"]["base"] == \
        pytest.approx(3000 / 1e8)
    assert set(await rpc.result("getrawmempool")) == {parent.txid_hex, child.txid_hex}
    orphan = spend([(bytes(32), 0)], [(1000, script_for(3))])
    answer = await rpc.result("submitpackage", [orphan.serialize().hex()])
    assert answer["package_msg"] == "transaction failed"
    assert answer["tx-results"][hash_to_hex_str(orphan.wtxid)]["error"] == \
        "bad-txns-inputs-missingorspent"
    _status, _result, error = await rpc.call("submitpackage", [orphan.serialize().hex(),
                                                                child.serialize().hex()])
    assert error["code"] == -25 and error["message"].startswith("package topology")


@pytest_twisted.ensureDeferred
async def test_informational_methods(regtest_node, node_client):
    rpc = node_client(regtest_node)
    info = await rpc.result("getnetworkinfo")
    assert info["version"] >= 310000 and info["relayfee"] == 0.00001
    # Core's user agent: Fulcrum takes any node without it for Bitcoin Cash (no segwit).
    assert info["subversion"].startswith("/Satoshi:31.0.0")
    fee = await rpc.result("estimatesmartfee", 6)
    assert fee["feerate"] > 0 and fee["blocks"] == 6
    assert await rpc.result("getzmqnotifications") == []
    # ElectrumX 2.0 refuses a node older than Bitcoin Core 31 or without txospenderindex.
    index = await rpc.result("getindexinfo")
    synced = {"synced": True, "best_block_height": regtest_node.node.height}
    assert index == {"txospenderindex": synced}           # txindex=0, bitcoind's default
    assert await rpc.result("uptime") >= 0
    text = await rpc.result("help")
    assert "getblockhash height" in text and "regtest_reveal height" in text
    assert await rpc.result("help", "getblock") == "getblock blockhash ( verbosity )"


@pytest_twisted.ensureDeferred
async def test_waitfornewblock_long_polls(regtest_node, node_client):
    rpc = node_client(regtest_node)
    node = regtest_node.node
    tip = {"hash": hash_to_hex_str(node.tip_hash), "height": node.height}
    assert await rpc.result("waitfornewblock", 50) == tip       # times out: the same tip
    waiting = len(node.block_waiters)
    waiter = defer.ensureDeferred(rpc.result("waitfornewblock", 60_000))
    await wait_for(lambda: len(node.block_waiters) > waiting)
    node.mine(1)
    assert await waiter == {"hash": hash_to_hex_str(node.tip_hash), "height": tip["height"] + 1}


@pytest_twisted.ensureDeferred
async def test_sendrawtransaction_caps_burnt_value_like_core(regtest_node, node_client):
    """bitcoind 25+ refuses value sent to an unspendable output beyond maxburnamount
    (default 0); Fulcrum passes maxfeerate and maxburnamount = 21 million BTC."""
    rpc = node_client(regtest_node)
    prevout, value, _script = regtest_node.node.unspent_outputs()[2]
    burn = spend([outpoint_of(prevout)], [(value - 5000 - 700, script_for(1)),
                                          (700, bytes([0x6a, 2]) + b"hi")])
    for params in ([burn.serialize().hex()], [burn.serialize().hex(), 0.1, 0.000006]):
        _status, _result, error = await rpc.call("sendrawtransaction", *params)
        assert error == {"code": -25, "message": "Unspendable output exceeds maximum "
                                                 "configured by user (maxburnamount)"}
    _status, _result, error = await rpc.call("sendrawtransaction", burn.serialize().hex(),
                                             0.1, -1)
    assert error == {"code": -3, "message": "Amount out of range"}
    assert await rpc.result("getrawmempool") == []
    assert await rpc.result("sendrawtransaction", burn.serialize().hex(), 0.1,
                            21_000_000) == burn.txid_hex
    # A zero-value OP_RETURN output burns nothing: the default cap lets it through.
    data = spend([(burn.txid, 0)], [(value - 12000, script_for(2)),
                                    (0, bytes([0x6a, 2]) + b"ok")])
    assert await rpc.result("sendrawtransaction", data.serialize().hex()) == data.txid_hex


@pytest_twisted.ensureDeferred
async def test_fulcrums_calls_get_cores_answers(regtest_node, node_client):
    """The calls Fulcrum 2.1 makes at start-up and while polling, in its own forms."""
    rpc = node_client(regtest_node)
    tip = await rpc.result("getbestblockhash")
    raw = await rpc.result("getblock", tip, False)             # verbosity as a bool
    assert raw == await rpc.result("getblock", tip, 0)
    assert isinstance(await rpc.result("getrawmempool", False), list)
    assert await rpc.result("uptime") >= 0                      # its cheap ping
    assert await rpc.result("help", "help") == 'help ( command )'   # its slow ping
    assert (await rpc.result("estimatesmartfee", 2, "conservative"))["blocks"] == 2
    info = await rpc.result("getblockchaininfo")
    assert info["bestblockhash"] == tip and info["initialblockdownload"] is False


def _raw_reply(port, auth, body):
    """(headers, body) of one POST, read with the standard library's HTTP client."""
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/", body, {"Authorization": auth})
        response = connection.getresponse()
        return dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest_twisted.ensureDeferred
async def test_replies_carry_content_length_not_chunks(regtest_node, node_client):
    """bitcoind sends Content-Type and Content-Length; Fulcrum drops a node without both."""
    import base64
    from twisted.internet import threads
    rpc = node_client(regtest_node)
    auth = "Basic " + base64.b64encode(f"{rpc.user}:{rpc.password}".encode()).decode()
    for body in (b'{"id": 1, "method": "getblockcount", "params": []}',
                 b'{"id": 2, "method": "nosuchmethod", "params": []}',
                 b'[{"id": 3, "method": "uptime"}]'):
        headers, reply = await threads.deferToThread(_raw_reply, rpc.port, auth, body)
        assert headers["Content-Type"] == "application/json"
        assert int(headers["Content-Length"]) == len(reply) and "Transfer-Encoding" not in headers
