"""The regtest node's JSON-RPC over real HTTP on 127.0.0.1: methods, errors, control, failures."""

import base64
from io import BytesIO

import orjson
import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.coins import BitcoinRegtest
from tests.fixtures.blocks import script_for, spend


pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


async def post(node, payload, user="regtest", password="regtest", raw=None):
    """(HTTP status, decoded body or raw bytes) of one POST to the node."""
    auth = base64.b64encode(f"{user}:{password}".encode())
    body = raw if raw is not None else orjson.dumps(payload)
    response = await Agent(reactor).request(
        b"POST", f"http://127.0.0.1:{node.port_number}/".encode(),
        Headers({b"Authorization": [b"Basic " + auth]}), FileBodyProducer(BytesIO(body)))
    data = await readBody(response)
    try:
        return response.code, orjson.loads(data)
    except orjson.JSONDecodeError:
        return response.code, data


async def call(node, method, *params):
    status, reply = await post(node, {"id": 1, "method": method, "params": list(params)})
    return status, reply["result"], reply["error"]


@pytest_twisted.ensureDeferred
async def test_walk_the_chain_from_genesis(start_node):
    node = start_node()
    _s, height, _e = await call(node, "getblockcount")
    assert height == node.node.height
    _s, info, _e = await call(node, "getblockchaininfo")
    assert info["chain"] == "regtest" and info["blocks"] == height
    prev = None
    for h in range(height + 1):
        _s, block_hash, _e = await call(node, "getblockhash", h)
        _s, block, _e = await call(node, "getblock", block_hash, 1)
        assert block["height"] == h and block.get("previousblockhash") == prev
        _s, raw, _e = await call(node, "getblock", block_hash, 0)
        assert BitcoinRegtest.parse_block_txs(bytes.fromhex(raw))[0][0] == \
            bytes.fromhex(block["tx"][0])[::-1]
        prev = block_hash
    _s, best, _e = await call(node, "getbestblockhash")
    assert best == prev
    _s, header, _e = await call(node, "getblockheader", best, False)
    assert len(header) == 160


@pytest_twisted.ensureDeferred
async def test_transactions_and_the_mempool(start_node):
    node = start_node()
    prevout, value, _script = node.node.unspent_outputs()[0]
    tx = spend([(prevout[:32], int.from_bytes(prevout[32:], "little"))],
               [(value - 5000, script_for(1))])
    status, txid, err = await call(node, "sendrawtransaction", tx.serialize().hex())
    assert status == 200 and err is None and txid == tx.txid_hex
    _s, pool, _e = await call(node, "getrawmempool")
    assert pool == [txid]
    _s, verbose, _e = await call(node, "getrawmempool", True)
    assert verbose[txid]["fees"]["base"] == pytest.approx(5000 / 1e8)
    _s, info, _e = await call(node, "getmempoolinfo")
    assert info["size"] == 1
    _s, raw, _e = await call(node, "getrawtransaction", txid, 0)
    assert raw == tx.serialize().hex()
    # A conflicting transaction that pays less is refused; one paying more replaces it.
    low = spend([(prevout[:32], int.from_bytes(prevout[32:], "little"))],
                [(value - 4000, script_for(2))])
    status, _r, err = await call(node, "sendrawtransaction", low.serialize().hex())
    assert status == 500 and err["code"] == -26
    _s, accept, _e = await call(node, "testmempoolaccept", [low.serialize().hex()])
    assert accept[0]["allowed"] is False
    high = spend([(prevout[:32], int.from_bytes(prevout[32:], "little"))],
                 [(value - 9000, script_for(3))])
    _s, txid2, err = await call(node, "sendrawtransaction", high.serialize().hex())
    assert err is None
    _s, pool, _e = await call(node, "getrawmempool")
    assert pool == [txid2]
    # Mining confirms it.
    address = BitcoinRegtest.script_to_address(script_for(9))
    _s, hashes, _e = await call(node, "generatetoaddress", 1, address)
    _s, verbose_tx, _e = await call(node, "getrawtransaction", txid2, 1)
    assert verbose_tx["blockhash"] == hashes[0] and verbose_tx["confirmations"] == 1
    _s, pool, _e = await call(node, "getrawmempool")
    assert pool == []


@pytest_twisted.ensureDeferred
async def test_errors_use_bitcoinds_codes(start_node):
    node = start_node()
    cases = [
        (("getblockhash", 10_000), 500, -8),
        (("getblock", "00" * 32), 500, -5),
        (("getrawtransaction", "00" * 32), 500, -5),
        (("sendrawtransaction", "00"), 500, -22),
        (("sendrawtransaction", spend([(b"\x01" * 32, 0)], [(1, script_for(1))])
          .serialize().hex()), 500, -25),
        (("nosuchmethod",), 404, -32601),
    ]
    for (method, *params), want_status, want_code in cases:
        status, _result, err = await call(node, method, *params)
        assert (status, err["code"]) == (want_status, want_code), method
    status, reply = await post(node, None, raw=b"{not json")
    assert status == 500 and reply["error"]["code"] == -32700
    status, _ = await post(node, {"id": 1, "method": "getblockcount"}, password="wrong")
    assert status == 401
    status, reply = await post(node, [{"id": 1, "method": "getblockcount"},
                                      {"id": 2, "method": "nosuchmethod"}])
    assert status == 200 and reply[0]["result"] == node.node.height
    assert reply[1]["error"]["code"] == -32601


@pytest_twisted.ensureDeferred
async def test_reveal_mine_and_reorg_control(start_node):
    node = start_node(reveal=5)
    _s, height, _e = await call(node, "getblockcount")
    assert height == 5
    _s, height, _e = await call(node, "regtest_reveal", 8)
    assert height == 8
    old_tip = node.node.tip_hash
    _s, fork, _e = await call(node, "regtest_reorg", 2)
    assert fork == 6 and node.node.height == 9
    _s, header, _e = await call(node, "getblockheader", hash_to_hex_str(old_tip))
    assert header["confirmations"] == -1              # on a stale branch now
    waiter = post(node, {"id": 1, "method": "waitfornewblock", "params": [5000]})
    await task.deferLater(reactor, 0.05, lambda: None)
    await call(node, "regtest_mine", 1)
    _s, reply = await waiter
    assert reply["result"]["height"] == 10


@pytest_twisted.ensureDeferred
async def test_failure_modes(start_node):
    node = start_node()
    await node.fail("warmup")
    _s, _r, err = await call(node, "getblockcount")
    assert err["code"] == -28
    await node.fail("http500")
    status, body = await post(node, {"id": 1, "method": "getblockcount"})
    assert status == 500 and not isinstance(body, dict)
    await node.fail("corrupt")
    _status, body = await post(node, {"id": 1, "method": "getblockcount"})
    assert isinstance(body, bytes)
    await node.fail(None)
    await node.fail("refuse", 0.3)
    with pytest.raises(Exception):
        await call(node, "getblockcount")
    await task.deferLater(reactor, 0.5, lambda: None)
    _s, height, _e = await call(node, "getblockcount")
    assert height == node.node.height


@pytest_twisted.ensureDeferred
async def test_the_other_informational_methods(start_node):
    node = start_node()
    _s, info, _e = await call(node, "getnetworkinfo")
    assert info["version"] > 0 and info["relayfee"] > 0
    _s, fee, _e = await call(node, "estimatesmartfee", 6)
    assert fee["feerate"] > 0 and fee["blocks"] == 6
    status, _r, err = await call(node, "estimatesmartfee", 0)
    assert err["code"] == -8
    _s, zmq, _e = await call(node, "getzmqnotifications")
    assert zmq == []
    _s, index, _e = await call(node, "getindexinfo")
    assert index["txindex"]["synced"] is True


@pytest_twisted.ensureDeferred
async def test_mempool_churn_makes_valid_chains(start_node):
    node = start_node()
    _s, txids, _e = await call(node, "regtest_churn", 40, 3)
    assert len(txids) == 40
    _s, pool, _e = await call(node, "getrawmempool", True)
    assert set(pool) == set(txids)
    assert any(entry["depends"] for entry in pool.values())     # some unconfirmed chains
    await call(node, "regtest_mine", 1)
    _s, pool, _e = await call(node, "getrawmempool")
    assert pool == []
