"""Every error the regtest node gives, with bitcoind's codes and HTTP statuses."""

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from electrumx.chain.tx import Tx, TxInput, TxOutput, deserialize_block_txs
from tests.fixtures.blocks import script_for, spend

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


def spend_of(node, index=0, fee=5000):
    prevout, value, _script = node.unspent_outputs()[index]
    return spend([(prevout[:32], int.from_bytes(prevout[32:], "little"))],
                 [(value - fee, script_for(index + 1))])


def method_cases(node):
    mined = deserialize_block_txs(node.blocks[node.height])[1]
    duplicate = spend_of(node)
    duplicate.inputs.append(duplicate.inputs[0])
    too_much = spend_of(node, fee=-1)
    no_fee = spend_of(node, fee=0)
    no_inputs = Tx(2, [], [TxOutput(1, script_for(1))], 0)
    no_outputs = Tx(2, [TxInput(b"\x01" * 32, 0, b"", 0)], [], 0)
    missing = spend([(b"\x01" * 32, 0)], [(1, script_for(1))])
    return [
        (("getblockhash", 10_000), 500, -8, "Block height out of range"),
        (("getblockhash", -1), 500, -8, "Block height out of range"),
        (("getblockhash", "1"), 500, -3, None),
        (("getblock", "00" * 32), 500, -5, "Block not found"),
        (("getblock", "zz" * 32), 500, -8, "blockhash must be hexadecimal string"),
        (("getblock", "00"), 500, -8, None),
        (("getblockheader", "00" * 32), 500, -5, "Block not found"),
        (("getrawtransaction", "00" * 32), 500, -5,
         "No such mempool or blockchain transaction. Use gettransaction for wallet "
         "transactions."),
        (("getrawtransaction", "abc"), 500, -8, None),
        (("getmempoolentry", "00" * 32), 500, -5, "Transaction not in mempool"),
        (("sendrawtransaction", "00"), 500, -22, "TX decode failed"),
        (("sendrawtransaction", "not hex"), 500, -22, "TX decode failed"),
        (("sendrawtransaction", missing.serialize().hex()), 500, -25,
         "bad-txns-inputs-missingorspent"),
        (("sendrawtransaction", mined.serialize().hex()), 500, -27,
         "Transaction outputs already in utxo set"),
        (("sendrawtransaction", duplicate.serialize().hex()), 500, -26,
         "bad-txns-inputs-duplicate"),
        (("sendrawtransaction", too_much.serialize().hex()), 500, -26, "bad-txns-in-belowout"),
        (("sendrawtransaction", no_fee.serialize().hex()), 500, -26, None),
        (("sendrawtransaction", no_inputs.serialize().hex()), 500, -22, None),
        (("sendrawtransaction", no_outputs.serialize().hex()), 500, -26, "bad-txns-vout-empty"),
        (("sendrawtransaction", spend_of(node, fee=10 ** 8).serialize().hex()), 500, -25,
         "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)"),
        (("testmempoolaccept", "00"), 500, -3, None),
        (("testmempoolaccept", []), 500, -8, None),
        (("estimatesmartfee", 0), 500, -8, "Invalid conf_target, must be between 1 and 1008"),
        (("estimatesmartfee", 2, "sometimes"), 500, -8, None),
        (("generatetoaddress", 1, "not an address"), 500, -5, "Error: Invalid address"),
        (("getblockhash",), 500, -1, "getblockhash height"),
        (("getblockcount", 1, 2), 500, -1, "getblockcount"),
        (("nosuchmethod",), 404, -32601, "Method not found"),
        (("_answer",), 404, -32601, "Method not found"),
    ]


@pytest_twisted.ensureDeferred
async def test_method_errors_use_bitcoinds_codes_and_statuses(regtest_node, node_client):
    rpc = node_client(regtest_node)
    for (method, *params), want_status, want_code, want_message in \
            method_cases(regtest_node.node):
        status, result, err = await rpc.call(method, *params)
        assert (status, result, err["code"]) == (want_status, None, want_code), (method, err)
        if want_message is not None:
            assert err["message"] == want_message
    assert len(regtest_node.node.mempool) == 0


@pytest_twisted.ensureDeferred
async def test_request_level_errors(regtest_node, node_client):
    rpc = node_client(regtest_node)
    status, reply = await rpc.post(raw=b"{not json")
    assert status == 500 and reply["error"]["code"] == -32700 and reply["id"] is None
    status, reply = await rpc.post(raw=b'"a string"')
    assert status == 500 and reply["error"]["code"] == -32700
    status, reply = await rpc.post({"id": 7, "method": 12})
    assert status == 400 and reply["error"]["code"] == -32600 and reply["id"] == 7
    status, reply = await rpc.post({"id": 7, "method": "getblockcount", "params": "x"})
    assert status == 400 and reply["error"]["code"] == -32600
    status, reply = await rpc.post({"id": "named", "method": "getblockhash",
                                    "params": {"height": 0}})
    assert status == 200 and reply["id"] == "named" and reply["result"]
    status, _ = await rpc.post({"id": 1, "method": "getblockcount"}, password="wrong")
    assert status == 401
    response = await Agent(reactor).request(
        b"GET", f"http://127.0.0.1:{regtest_node.port_number}/".encode())
    await readBody(response)
    assert response.code == 405                      # bitcoind: JSON-RPC is POST only
    response = await Agent(reactor).request(
        b"POST", f"http://127.0.0.1:{regtest_node.port_number}/".encode())
    await readBody(response)
    assert response.code == 401                      # no credentials at all


@pytest_twisted.ensureDeferred
async def test_batches_answer_200_with_one_reply_each(regtest_node, node_client):
    rpc = node_client(regtest_node)
    status, reply = await rpc.post([{"id": 1, "method": "getblockcount"},
                                    {"id": 2, "method": "nosuchmethod"},
                                    {"id": 3, "method": "getblockhash", "params": [10_000]},
                                    "not an object",
                                    {"id": 5, "method": "getblockhash", "params": [0]}])
    assert status == 200 and [r["id"] for r in reply] == [1, 2, 3, None, 5]
    assert reply[0]["result"] == regtest_node.node.height and reply[0]["error"] is None
    assert [r["error"]["code"] for r in reply[1:4]] == [-32601, -8, -32600]
    assert reply[4]["result"] == await node_client(regtest_node).result("getblockhash", 0)
    status, reply = await rpc.post([])
    assert status == 200 and reply == []
