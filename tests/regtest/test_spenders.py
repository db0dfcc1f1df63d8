"""What ElectrumX 2.0 asks of a node for protocol 1.7, over real HTTP: gettxspendingprevout
(bitcoind 31 with txospenderindex), testmempoolaccept, and outputs that a replacement or a
reorg un-spends or un-funds."""

import pytest
import pytest_twisted

from electrumx.chain.hashes import hash_to_hex_str
from tests.fixtures.blocks import script_for, spend

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


def confirmed_outputs(node, count):
    """[((txid, index), value)] of the `count` largest confirmed unspent outputs."""
    largest = sorted(node.unspent_outputs(), key=lambda u: -u[1])[:count]
    return [((o[:32], int.from_bytes(o[32:], "little")), value) for o, value, _s in largest]


def prevout(txid, vout):
    return {"txid": hash_to_hex_str(txid) if isinstance(txid, bytes) else txid, "vout": vout}


async def spender_of(rpc, txid, vout, **options):
    [answer] = await rpc.result("gettxspendingprevout", [prevout(txid, vout)], options)
    assert answer["txid"] == hash_to_hex_str(txid) and answer["vout"] == vout
    return {k: v for k, v in answer.items() if k not in ("txid", "vout")}


@pytest_twisted.ensureDeferred
async def test_spenders_in_the_mempool_then_in_a_block(regtest_node, node_client):
    rpc, node = node_client(regtest_node), regtest_node.node
    [(x, value)] = confirmed_outputs(node, 1)
    assert await spender_of(rpc, *x) == {}                                  # unspent
    tx = spend([x], [(value - 5000, script_for(1))])
    await rpc.result("sendrawtransaction", tx.serialize().hex())
    assert await spender_of(rpc, *x) == {"spendingtxid": tx.txid_hex}       # no blockhash
    assert await spender_of(rpc, *x, return_spending_tx=True) == {
        "spendingtxid": tx.txid_hex, "spendingtx": tx.serialize().hex()}
    assert await spender_of(rpc, tx.txid, 0) == {}                          # its own output
    [block_hash] = await rpc.result("regtest_mine", 1)
    assert await spender_of(rpc, *x) == {"spendingtxid": tx.txid_hex, "blockhash": block_hash}
    assert await spender_of(rpc, *x, mempool_only=True) == {}                # index not asked
    # Several at once, in the order asked, each answer echoing its request object.
    unknown = prevout("ab" * 32, 7)
    answers = await rpc.result("gettxspendingprevout",
                               [unknown, prevout(*x), prevout(tx.txid, 5)])
    assert answers == [unknown, dict(prevout(*x), spendingtxid=tx.txid_hex,
                                     blockhash=block_hash), prevout(tx.txid, 5)]
    # The options by name, as `bitcoin-cli -named` sends them.
    _status, reply = await rpc.post({"id": 1, "method": "gettxspendingprevout", "params": {
        "outputs": [prevout(*x)], "return_spending_tx": True}})
    assert reply["result"][0]["spendingtx"] == tx.serialize().hex()


@pytest_twisted.ensureDeferred
async def test_gettxspendingprevout_refuses_bad_requests_as_bitcoind(regtest_node,
                                                                     node_client):
    rpc = node_client(regtest_node)
    good = prevout("ab" * 32, 0)
    cases = [
        (([],), -8, "Invalid parameter, outputs are missing"),
        (("x",), -3, "Wrong type passed:\n{\n    \"Position 1 (outputs)\": \"JSON value of "
                     "type string is not of expected type array\"\n}"),
        (([good], []), -3, None),
        (([good], {"mempool_only": 1}), -3,
         "JSON value of type number for field mempool_only is not of expected type bool"),
        (([good], {"verbose": True}), -3, "Unexpected key verbose"),
        (([dict(good, unknown=42)],), -3, "Unexpected key unknown"),
        (([{"txid": "ab" * 32}],), -3, "Missing vout"),
        (([{"vout": 3}],), -3, "Missing txid"),
        (([{"txid": 42, "vout": 0}],), -3,
         "JSON value of type number for field txid is not of expected type string"),
        (([{"txid": "ab", "vout": 0}],), -8, None),
        (([{"txid": "zz" * 32, "vout": 0}],), -8, None),
        (([prevout("ab" * 32, -1)],), -8, "Invalid parameter, vout cannot be negative"),
        (([prevout("ab" * 32, True)],), -3, None),
        (([prevout("ab" * 32, 1.5)],), -1, "JSON integer out of range"),
        (([prevout("ab" * 32, 2 ** 31)],), -1, "JSON integer out of range"),
        (([good, "x"],), -1, "JSON value of type string is not of expected type object"),
    ]
    for params, code, message in cases:
        _status, _result, error = await rpc.call("gettxspendingprevout", *params)
        assert error["code"] == code, (params, error)
        assert message is None or error["message"] == message, (params, error)


@pytest_twisted.ensureDeferred
async def test_testmempoolaccept_answers_as_bitcoind_31(regtest_node, node_client):
    rpc, node = node_client(regtest_node), regtest_node.node
    [(x, value), (y, value_y)] = confirmed_outputs(node, 2)
    parent = spend([x], [(value - 3000, script_for(1))])
    child = spend([(parent.txid, 0)], [(value - 6000, script_for(2))])
    [answer] = await rpc.result("testmempoolaccept", [parent.serialize().hex()])
    wtxid = hash_to_hex_str(parent.wtxid)
    assert answer == {"txid": parent.txid_hex, "wtxid": wtxid, "allowed": True,
                      "vsize": parent.vsize, "fees": {
                          "base": 3000 / 1e8, "effective-feerate": 3000 * 1000 // parent.vsize
                          / 1e8, "effective-includes": [wtxid]}}
    [answer] = await rpc.result("testmempoolaccept", [child.serialize().hex()])
    assert answer["reject-reason"] == "missing-inputs" and "reject-details" not in answer
    # A package: the child counts its parent, and the mempool stays as it was.
    both = await rpc.result("testmempoolaccept", [parent.serialize().hex(),
                                                  child.serialize().hex()])
    assert [a["allowed"] for a in both] == [True, True] and len(node.mempool) == 0
    cheap = spend([y], [(value_y - 1, script_for(3))])
    answers = await rpc.result("testmempoolaccept", [cheap.serialize().hex(),
                                                     child.serialize().hex()])
    assert answers[0]["reject-reason"] == "min relay fee not met"
    assert answers[0]["reject-details"].startswith("min relay fee not met, 1 < ")
    assert answers[1] == {"txid": child.txid_hex, "wtxid": hash_to_hex_str(child.wtxid)}
    greedy = spend([y], [(value_y // 2, script_for(3))])
    [answer] = await rpc.result("testmempoolaccept", [greedy.serialize().hex()])
    assert answer["reject-reason"] == "max-fee-exceeded"
    [answer] = await rpc.result("testmempoolaccept", [greedy.serialize().hex()], 0)
    assert answer["allowed"] is True                          # 0: no fee cap
    await rpc.result("sendrawtransaction", parent.serialize().hex())
    [answer] = await rpc.result("testmempoolaccept", [parent.serialize().hex()])
    assert answer["reject-reason"] == "txn-already-in-mempool"
    _status, _result, error = await rpc.call("testmempoolaccept", ["00"])
    assert error["code"] == -22 and error["message"].startswith("TX decode failed for tx 0.")


@pytest_twisted.ensureDeferred
async def test_regtest_replace_evicts_the_spender_and_its_descendants(regtest_node,
                                                                      node_client):
    rpc, node = node_client(regtest_node), regtest_node.node
    [(x, value)] = confirmed_outputs(node, 1)
    first = spend([x], [(value - 5000, script_for(1))])
    child = spend([(first.txid, 0)], [(value - 9000, script_for(2))])
    for tx in (first, child):
        await rpc.result("sendrawtransaction", tx.serialize().hex())
    replacement = await rpc.result("regtest_replace", first.txid_hex, 0)  # own relay fee only
    assert await rpc.result("getrawmempool") == [replacement]
    assert await spender_of(rpc, *x) == {"spendingtxid": replacement}
    assert await spender_of(rpc, first.txid, 0) == {}
    fee = (await rpc.result("getmempoolentry", replacement))["fees"]["base"]
    assert fee * 1e8 >= 9000 + (await rpc.result("getmempoolentry", replacement))["vsize"]
    again = await rpc.result("regtest_replace", replacement, 10_000)
    assert await spender_of(rpc, *x) == {"spendingtxid": again}
    for bad, code in (((again, -1), -8), ((first.txid_hex,), -5), ((again, "1"), -3)):
        _status, _result, error = await rpc.call("regtest_replace", *bad)
        assert error["code"] == code


@pytest_twisted.ensureDeferred
async def test_a_reorg_un_spends_and_un_funds_outputs(regtest_node, node_client):
    """A spend confirmed in the old branch only: its other output is unspent again.  A
    payment whose input the new branch spends otherwise: its outputs never existed."""
    rpc, node = node_client(regtest_node), regtest_node.node
    [(x, vx), (y, vy), (z, vz)] = confirmed_outputs(node, 3)
    both = spend([x, y], [(vx + vy - 5000, script_for(1))])
    funder = spend([z], [(vz - 5000, script_for(2))])
    for tx in (both, funder):
        await rpc.result("sendrawtransaction", tx.serialize().hex())
    [old_block] = await rpc.result("regtest_mine", 1)
    spends_funded = spend([(funder.txid, 0)], [(vz - 9000, script_for(3))])
    await rpc.result("sendrawtransaction", spends_funded.serialize().hex())
    assert await spender_of(rpc, *x) == {"spendingtxid": both.txid_hex, "blockhash": old_block}
    assert await spender_of(rpc, funder.txid, 0) == {"spendingtxid": spends_funded.txid_hex}
    only_y = spend([y], [(vy - 5000, script_for(4))])
    other_z = spend([z], [(vz - 6000, script_for(5))])
    await rpc.result("regtest_reorg", 1, 2, [only_y.serialize().hex(),
                                             other_z.serialize().hex()])
    new_block = await rpc.result("getblockhash", node.height - 1)
    assert await spender_of(rpc, *x) == {}                                     # un-spent
    assert await spender_of(rpc, *y) == {"spendingtxid": only_y.txid_hex,
                                         "blockhash": new_block}
    assert await spender_of(rpc, funder.txid, 0) == {}                         # un-funded
    _status, _result, error = await rpc.call("getrawtransaction", funder.txid_hex)
    assert error["code"] == -5
    assert await rpc.result("getrawmempool") == []
    # The old branch's block is still served, as stale.
    assert (await rpc.result("getblockheader", old_block))["confirmations"] == -1
