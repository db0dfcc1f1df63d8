"""Conformance by comparison: our server and ElectrumX 2.0 give the same answers.

Both servers index the same tiny regtest chain from one built-in node (a
separate process), with mempool transactions, and both live through a reorg.
Then every method of protocol 1.4, 1.4.2 and 1.6 is asked of both, for every script
the chain pays, every height and every transaction, plus bad parameters.
Results must be equal; errors must have equal codes.  The exceptions are the
fields that differ by design (BY_DESIGN) and the deliberate differences the
README lists under "Differences from ElectrumX" (DELIBERATE).

ElectrumX comes from bench/setup_electrumx.sh.  Without it the test skips,
unless ELECTRUMX_REQUIRE_REFERENCE=1 (as in CI), when it fails.
"""

import collections
import hashlib
import os

import pytest

from tests.conformance.pair import (Client, chain_facts, differences, error_or_result,
                                    running_pair, wait_until_same)

BY_DESIGN = {"server.banner", "server.donation_address", "server.peers.subscribe",
             "server.add_peer"}
"""Methods whose answers are each server's own: only both must succeed."""
FEATURES_COMPARED = ("genesis_hash", "hash_function", "pruning", "protocol_min")
INTEGER_PARAMS = {"blockchain.block.header", "blockchain.block.headers",
                  "blockchain.estimatefee", "blockchain.transaction.get_merkle",
                  "blockchain.transaction.id_from_pos"}
DELIBERATE = {
    "integer parameters must be JSON integers (ElectrumX applies int() to strings)":
        lambda method, params: method in INTEGER_PARAMS and
        any(isinstance(p, str) and p.isdigit() for p in params),
    "the genesis block's coinbase has a position (ElectrumX: no tx at position 0)":
        lambda method, params: method == "blockchain.transaction.id_from_pos" and
        params[0] == 0,
}
"""Why answers may differ, and to which requests: the README's "Differences from ElectrumX"."""
V1_4 = ["server.version", "server.ping", "server.features", "server.banner",
        "server.donation_address", "server.peers.subscribe", "blockchain.headers.subscribe",
        "blockchain.block.header", "blockchain.block.headers", "blockchain.estimatefee",
        "blockchain.relayfee", "blockchain.transaction.broadcast",
        "blockchain.transaction.get", "blockchain.transaction.get_merkle",
        "blockchain.transaction.id_from_pos", "mempool.get_fee_histogram"] + \
    [f"blockchain.scripthash.{m}" for m in ("get_balance", "get_history", "get_mempool",
                                            "listunspent", "subscribe")]
METHODS = {"1.4": V1_4, "1.4.2": V1_4 + ["blockchain.scripthash.unsubscribe"],
           "1.6": [m for m in V1_4 if m != "blockchain.relayfee"] +
           ["blockchain.scripthash.unsubscribe", "mempool.get_info",
            "blockchain.transaction.broadcast_package"]}
"""Every method of each protocol version, each of which must answer at least once.

test_same_answers_to_new_transactions also broadcasts new transactions and packages."""
UNUSED = [hashlib.sha256(b"unused %d" % n).digest()[::-1].hex() for n in range(5)]
BAD_HASHES = ["", "00", "zz" * 32, UNUSED[0][:-2], UNUSED[0] + "00", 5, None]


def outcome(method, reply):
    """What must agree: the result, or the error code.

    listunspent's mempool outputs (height 0) come in no defined order
    (ElectrumX's follow a set's iteration), so they are compared sorted;
    of server.features only FEATURES_COMPARED.
    """
    compared = error_or_result(reply)
    result = compared.get("result")
    if method == "blockchain.scripthash.listunspent" and isinstance(result, list):
        confirmed = [u for u in result if u["height"] > 0]
        pending = sorted((u for u in result if u["height"] <= 0),
                         key=lambda u: (u["tx_hash"], u["tx_pos"]))
        return {"result": confirmed + pending}
    if method == "server.features" and isinstance(result, dict):
        return {"result": {k: result.get(k) for k in FEATURES_COMPARED}}
    return compared


@pytest.fixture(scope="module")
def servers():
    """(node rpc, {kind: port}, chain facts) after sync, mempool churn and a reorg."""
    with running_pair() as (rpc, ports):
        fork = rpc("regtest_reorg", 3, 4, [], 2)
        rpc("regtest_churn", 15, 2)
        wait_until_same(rpc, ports)
        yield rpc, ports, dict(chain_facts(rpc), reorged=fork)


def requests_for(version, facts):
    """Every method of `version` with many good and bad parameters."""
    tip = facts["height"]
    v16 = version == "1.6"
    reqs = [("server.version", ["again", version]), ("server.ping", []),
            ("server.add_peer", [{"hosts": {}}]), ("blockchain.headers.subscribe", []),
            ("server.features", []), ("server.banner", []), ("server.donation_address", []),
            ("server.peers.subscribe", []), ("mempool.get_fee_histogram", []),
            ("mempool.get_info", []), ("blockchain.relayfee", []),
            ("blockchain.no_such_method", [])]
    for n in (1, 2, 3, 6, 25, 26, 144, 1008, 1009, 0, -1, "x"):
        reqs.append(("blockchain.estimatefee", [n]))
    if v16:
        for mode in ("CONSERVATIVE", "ECONOMICAL", "conservative", "bogus", None):
            reqs.append(("blockchain.estimatefee", [6, mode]))
    for h in range(-1, tip + 2):
        reqs.append(("blockchain.block.header", [h]))
        reqs += [("blockchain.block.header", [h, cp]) for cp in (tip, h, h - 1, tip + 1)
                 if h % 4 == 0]
    reqs += [("blockchain.block.header", ["1"]), ("blockchain.block.header", [])]
    for first in range(-1, tip + 2, 2):
        for count in (0, 1, 5, 2016, 2017):
            reqs.append(("blockchain.block.headers", [first, count]))
        reqs += [("blockchain.block.headers", [first, 3, cp]) for cp in (tip, first + 2)]
    for sh in facts["scripthashes"] + UNUSED + BAD_HASHES:
        for method in ("get_balance", "get_history", "get_mempool", "listunspent",
                       "subscribe", "unsubscribe"):
            reqs.append((f"blockchain.scripthash.{method}", [sh]))
    confirmed = [(t, h) for h, txids in enumerate(facts["block_txids"]) for t in txids]
    for txid, height in confirmed[1:]:         # the genesis coinbase is nobody's
        reqs += [("blockchain.transaction.get", [txid]),
                 ("blockchain.transaction.get_merkle", [txid, height])]
        if height % 5 == 0:
            reqs += [("blockchain.transaction.get", [txid, True]),
                     ("blockchain.transaction.get_merkle", [txid, height + 1])]
    for txid in facts["mempool"]:
        reqs += [("blockchain.transaction.get", [txid]),
                 ("blockchain.transaction.get_merkle", [txid, 0])]
    reqs += [("blockchain.transaction.get", [UNUSED[0]]),
             ("blockchain.transaction.get", ["zz"]),
             ("blockchain.transaction.get_merkle", [UNUSED[0], 1])]
    for height, txids in enumerate(facts["block_txids"]):
        for pos in range(len(txids) + 1):
            reqs.append(("blockchain.transaction.id_from_pos", [height, pos]))
            if pos % 3 == 0:
                reqs.append(("blockchain.transaction.id_from_pos", [height, pos, True]))
    reqs += [("blockchain.transaction.id_from_pos", [tip + 1, 0]),
             ("blockchain.transaction.id_from_pos", [-1, 0])]
    in_mempool = facts["mempool_txs"][0]["hex"]
    reqs += [("blockchain.transaction.broadcast", [raw]) for raw in
             ("00", "zz", in_mempool[:-2], in_mempool)]
    if v16:
        reqs += [("blockchain.transaction.broadcast_package", [raws]) for raws in
                 ([in_mempool], ["00"], [])]
    return reqs


@pytest.mark.parametrize("version", sorted(METHODS))
def test_same_answers_as_electrumx(servers, version):
    rpc, ports, facts = servers
    requests = requests_for(version, facts)
    answers = {}
    for kind, port in ports.items():
        client = Client(port, version)
        try:
            assert client.version["result"][1] == version
            answers[kind] = client.ask(requests)
        finally:
            client.close()
    tally = collections.Counter((method, "error" in outcome(method, reply))
                                for (method, _p), reply in zip(requests, answers["electrumx"]))
    if os.environ.get("CONFORMANCE_SHOW"):
        print(version, len(requests), sorted(tally.items()))
    for method in METHODS[version][1:]:        # each answered, not only refused
        assert tally[(method, False)] > 0, method
    assert facts["mempool"] and facts["reorged"]
    found = differences(version, requests, answers["ours"], answers["electrumx"], outcome,
                        DELIBERATE, BY_DESIGN)
    assert not found, f"{len(found)} differences:\n" + "\n".join(found[:40])


def spendable_outputs(rpc, facts):
    """[(txid display hex, index, value)] of mempool outputs the node would let us spend."""
    from electrumx.chain.tx import Tx, TxInput, TxOutput
    found = []
    for tx in facts["mempool_txs"]:
        for out in tx["vout"]:
            value = round(out["value"] * 1e8)
            if value < 50_000:
                continue
            probe = Tx(2, [TxInput(bytes.fromhex(tx["txid"])[::-1], out["n"], b"", 0)],
                       [TxOutput(value - 1000, bytes.fromhex("51"))], 0)
            [answer] = rpc("testmempoolaccept", [probe.serialize().hex()])
            if answer["allowed"]:
                found.append((tx["txid"], out["n"], value))
    return found


def parent_and_child(txid, index, value, tag):
    """Raw hex of a transaction spending the output and of one spending it in turn."""
    from electrumx.chain.script import p2pkh_script
    from electrumx.chain.tx import Tx, TxInput, TxOutput
    script = p2pkh_script(bytes([tag]) * 20)
    parent = Tx(2, [TxInput(bytes.fromhex(txid)[::-1], index, b"", 0)],
                [TxOutput(value - 2000, script)], 0)
    child = Tx(2, [TxInput(parent.txid, 0, b"", 0)], [TxOutput(value - 4000, script)], 0)
    return parent.serialize().hex(), child.serialize().hex()


def test_same_answers_to_new_transactions(servers):
    """Broadcasting a new transaction and a new package: each server sends its own."""
    rpc, ports, facts = servers
    outputs = spendable_outputs(rpc, facts)
    assert len(outputs) >= 4
    answers = {}
    for n, (kind, port) in enumerate(ports.items()):
        parent, child = parent_and_child(*outputs[2 * n], tag=n + 1)
        lone, _ = parent_and_child(*outputs[2 * n + 1], tag=n + 3)
        client = Client(port, "1.6")
        try:
            answers[kind] = [outcome("", r) for r in client.ask([
                ("blockchain.transaction.broadcast_package", [[parent, child]]),
                ("blockchain.transaction.broadcast_package", [[child]]),
                ("blockchain.transaction.broadcast_package", [[lone, child]])])]
            answers[kind].append(outcome("", *client.ask([
                ("blockchain.transaction.broadcast", [lone])])))
        finally:
            client.close()
    assert answers["ours"][0] == {"result": {"success": True}}
    assert answers["ours"][-1]["result"] != answers["electrumx"][-1]["result"]   # own txids
    answers["electrumx"][-1]["result"] = answers["ours"][-1]["result"]
    assert answers["ours"] == answers["electrumx"]
