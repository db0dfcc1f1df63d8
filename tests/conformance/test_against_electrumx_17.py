"""Conformance at protocol 1.7: our server and ElectrumX 2.0 give the same answers and send
the same notifications.

Both index one built-in regtest node, which answers ElectrumX's
gettxspendingprevout as bitcoind 31 with txospenderindex does; we answer outpoint
status from our own index.  Every 1.7 method is asked of both: every output of every
transaction (so every outpoint state: unknown, funded in the mempool, funded and
confirmed, spent in the mempool, spent and confirmed), every script, and bad
parameters.  Then one session on each subscribes to outpoints and scripts, and the
notifications after a mempool spend, an RBF replacement, a block and a reorg (which
un-spends one output and un-funds another) must agree.

Where ElectrumX 2.0 is wrong, the answers may differ: DELIBERATE gives each reason and
the requests it covers, and test_electrumx_still_does_what_deliberate_says checks that
ElectrumX still behaves so, and that we do as we say.
"""

import collections
import json

import pytest

from electrumx.chain.tx import Tx, TxInput, TxOutput
from tests.conformance.pair import (chain_facts, clients, differences, error_or_result,
                                    running_pair, scripthash, wait_until_same)

VERSION = "1.7"
BAD_REQUEST = 1
FEATURES_COMPARED = ("genesis_hash", "hash_function", "pruning", "protocol_min",
                     "protocol_max")
BY_DESIGN = {"server.banner", "server.donation_address", "server.peers.subscribe",
             "server.add_peer", "mempool.recent"}
"""Methods whose answers are each server's own: only both must succeed (or both fail).

mempool.recent lists the latest arrivals each server saw, and transactions arriving in
one poll (after a reorg, say) come in no defined order: it is compared exactly where one
transaction arrives at a time, in the notifications test."""
UNUSED_TXID = "ab" * 32
UNUSED_SCRIPT = "76a914" + "11" * 20 + "88ac"
WRONG_HINT = "51"
"""A script no output of the chain pays (OP_TRUE): the wrong hint for a known outpoint."""
BIG_SCRIPT, TOO_BIG_SCRIPT = "51" * 10_000, "51" * 10_001
BAD_SCRIPTS = ["", "5", "zz", TOO_BIG_SCRIPT, 5, None, ["51"]]
BAD_TXIDS = ["", "00", "zz" * 32, UNUSED_TXID[:-2], 5, None]
BAD_INDEXES = [-1, 2 ** 32, None, "x", [0]]
LOOSE_INDEXES = [1.5, True, "0"]
SPK_METHODS = ("get_balance", "get_history", "get_mempool", "listunspent", "subscribe",
               "unsubscribe")
METHODS = ["server.ping", "server.features", "blockchain.headers.subscribe",
           "blockchain.block.header", "blockchain.block.headers", "blockchain.estimatefee",
           "blockchain.transaction.get", "blockchain.transaction.get_merkle",
           "blockchain.transaction.id_from_pos", "blockchain.transaction.broadcast",
           "blockchain.transaction.broadcast_package", "mempool.get_fee_histogram",
           "mempool.get_info", "mempool.recent", "blockchain.transaction.testmempoolaccept",
           "blockchain.outpoint.get_status", "blockchain.outpoint.subscribe",
           "blockchain.outpoint.unsubscribe"] + \
    [f"blockchain.scriptpubkey.{m}" for m in SPK_METHODS]
"""Every method of 1.7, each of which must answer at least once."""
GONE = ["blockchain.relayfee"] + [f"blockchain.scripthash.{m}" for m in SPK_METHODS]
"""Methods 1.7 no longer has: both must refuse them."""


def outpoint_method(method):
    return method.startswith("blockchain.outpoint.")


def deliberate(facts):
    """{reason: applies(method, params)}: where ElectrumX 2.0 is wrong and we are not.

    The README's "Differences from ElectrumX" words them for users.
    """
    op_return = {json.dumps(list(o)) for o in facts["op_return_outpoints"]}
    genesis = facts["block_txids"][0][0]
    return {
        "(b) spk_hint must be the outpoint's script: ElectrumX ignores it, we refuse a "
        "wrong or empty hint for a known outpoint (BAD_REQUEST)":
            lambda method, params: outpoint_method(method) and len(params) == 3 and
            params[2] in (WRONG_HINT, "") and params[0] != UNUSED_TXID,
        "(c) output indexes must be JSON integers below 2**32: ElectrumX takes 1.5 and true "
        "as 1, \"0\" as 0, and answers {} to 2**32":
            lambda method, params: outpoint_method(method) and len(params) > 1 and (
                any(type(params[1]) is type(v) and params[1] == v for v in LOOSE_INDEXES) or
                params[1] == 2 ** 32),
        "(d) a script is 1 to 10,000 bytes: ElectrumX takes the empty script and longer "
        "ones":
            lambda method, params: (method.startswith("blockchain.scriptpubkey.") and
                                    params in ([""], [TOO_BIG_SCRIPT])) or
            (outpoint_method(method) and params[2:] in ([""], [TOO_BIG_SCRIPT])),
        "(e) a transaction the node cannot test is a bad request: ElectrumX passes the "
        "node's error on as code 2 (DAEMON_ERROR)":
            lambda method, params: method == "blockchain.transaction.testmempoolaccept" and
            params and isinstance(params[0], list) and
            (not params[0] or len(params[0]) > 25 or "00" in params[0]),
        "(f) an OP_RETURN output is never funded (it is unspendable): ElectrumX gives it a "
        "funding height":
            lambda method, params: outpoint_method(method) and
            json.dumps(params[:2]) in op_return,
        "(g) the genesis coinbase's output is never funded (bitcoind never put it in the "
        "UTXO set): ElectrumX says funder_height 0, which 1.7 uses for the mempool":
            lambda method, params: outpoint_method(method) and params[:1] == [genesis],
    }


DELIBERATE_IN_NOTIFICATIONS = (
    "(a) a blockchain.scriptpubkey.subscribe notification names the script subscribed to, "
    "as the request did: ElectrumX names its script hash (the 1.4 scripthash notification's "
    "parameter).  Its notifications are read with the hash mapped back to the script.")


def outcome(method, reply):
    """What must agree: the result, or the error code; unconfirmed UTXOs sorted
    (ElectrumX lists them in a set's order), of server.features FEATURES_COMPARED."""
    compared = error_or_result(reply)
    result = compared.get("result")
    if method == "blockchain.scriptpubkey.listunspent" and isinstance(result, dict):
        utxos = result.get("utxos") or []
        pending = sorted((u for u in utxos if u["height"] <= 0),
                         key=lambda u: (u["tx_hash"], u["tx_pos"]))
        return {"result": dict(result, utxos=[u for u in utxos if u["height"] > 0] +
                               pending)}
    if method == "server.features" and isinstance(result, dict):
        return {"result": {k: _version(result.get(k)) if k.startswith("protocol_")
                           else result.get(k) for k in FEATURES_COMPARED}}
    return compared


def _version(text):
    """A protocol version as a tuple: "1.7" and "1.7.0" are one version."""
    numbers = [int(n) for n in text.split(".")] if isinstance(text, str) else [text]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def state_of(status):
    """Which of the five outpoint states a get_status answer is in."""
    if "funder_height" not in status:
        return "unknown"
    where = "mempool" if "spender_height" in status and status["spender_height"] <= 0 \
        else "confirmed"
    if "spender_txhash" in status:
        return f"spent in {where}"
    return "funded in " + ("mempool" if status["funder_height"] <= 0 else "confirmed")


@pytest.fixture(scope="module")
def pair():
    """(node rpc, {kind: port}, chain facts): both servers on a chain with a mempool,
    after a reorg that double-spent two transactions."""
    with running_pair() as (rpc, ports):
        rpc("regtest_reorg", 2, 3, [], 2)
        rpc("regtest_churn", 15, 2)
        wait_until_same(rpc, ports)
        yield rpc, ports, outpoint_facts(chain_facts(rpc))


def outpoint_facts(facts):
    """The facts, plus every output as (txid, index, script hex, value) and the
    outpoints of OP_RETURN outputs."""
    txs = [tx for block in facts["blocks"] for tx in block["tx"]] + facts["mempool_txs"]
    outputs = [(tx["txid"], out["n"], out["scriptPubKey"]["hex"], round(out["value"] * 1e8))
               for tx in txs for out in tx["vout"]]
    return dict(facts, txs=txs, outputs=outputs,
                op_return_outpoints={(t, n) for t, n, s, _v in outputs if s.startswith("6a")})


def requests_for(facts):
    """Every 1.7 method, with good and bad parameters.

    ElectrumX runs a session's pipelined requests concurrently, so an unsubscribe
    sent with its subscribe can overtake it: unsubscribes are asked after the rest
    has been answered.
    """
    reqs = _requests_for(facts)
    return [r for r in reqs if not r[0].endswith(".unsubscribe")] + \
        [r for r in reqs if r[0].endswith(".unsubscribe")]


def _requests_for(facts):
    tip = facts["height"]
    reqs = [("server.ping", []), ("server.features", []), ("server.banner", []),
            ("server.donation_address", []), ("server.peers.subscribe", []),
            ("server.version", ["again", VERSION]), ("blockchain.headers.subscribe", []),
            ("mempool.get_fee_histogram", []), ("mempool.get_info", []),
            ("mempool.recent", []), ("mempool.recent", [1]), ("blockchain.estimatefee", [6]),
            ("blockchain.block.header", [tip]), ("blockchain.block.header", [tip, tip]),
            ("blockchain.block.headers", [0, 5]), ("blockchain.block.headers", [tip - 2, 5])]
    reqs += [(method, [facts["scripthashes"][0]]) for method in GONE]
    for script in facts["scripts"] + [UNUSED_SCRIPT, BIG_SCRIPT] + BAD_SCRIPTS:
        reqs += [(f"blockchain.scriptpubkey.{m}", [script]) for m in SPK_METHODS]
    for n, (txid, index, script, _value) in enumerate(facts["outputs"]):
        reqs.append(("blockchain.outpoint.get_status", [txid, index, script]))
        if n % 7 == 0:
            reqs += [("blockchain.outpoint.subscribe", [txid, index, script]),
                     ("blockchain.outpoint.get_status", [txid, index, WRONG_HINT]),
                     ("blockchain.outpoint.get_status", [txid, index, ""]),
                     ("blockchain.outpoint.get_status", [txid, index]),
                     ("blockchain.outpoint.unsubscribe", [txid, index])]
    for tx in facts["txs"][1::9]:                  # an index past the last output
        reqs.append(("blockchain.outpoint.get_status", [tx["txid"], len(tx["vout"]),
                                                        UNUSED_SCRIPT]))
    txid, index, script, _value = facts["outputs"][3]
    reqs += [("blockchain.outpoint.get_status", [UNUSED_TXID, 0, UNUSED_SCRIPT]),
             ("blockchain.outpoint.subscribe", [UNUSED_TXID, 0, UNUSED_SCRIPT]),
             ("blockchain.outpoint.unsubscribe", [UNUSED_TXID, 0]),
             ("blockchain.outpoint.unsubscribe", [UNUSED_TXID, 0]),
             ("blockchain.outpoint.get_status", [txid, index, script, "extra"]),
             ("blockchain.outpoint.get_status", [txid])]
    for bad in BAD_TXIDS:
        reqs.append(("blockchain.outpoint.get_status", [bad, 0, UNUSED_SCRIPT]))
    for bad in BAD_INDEXES + LOOSE_INDEXES:
        reqs += [(f"blockchain.outpoint.{m}", [txid, bad, script])
                 for m in ("get_status", "subscribe")]
    for bad in BAD_SCRIPTS:
        reqs.append(("blockchain.outpoint.get_status", [txid, index, bad]))
    in_mempool = facts["mempool_txs"][0]["hex"]
    confirmed = facts["blocks"][-1]["tx"][-1]["hex"]
    for raws in ([in_mempool], [confirmed], [in_mempool, confirmed], ["00"], [], ["zz"],
                 [in_mempool] * 26, "not a list", [5]):
        reqs.append(("blockchain.transaction.testmempoolaccept", [raws]))
    reqs += [("blockchain.transaction.get", [facts["mempool"][0]]),
             ("blockchain.transaction.get_merkle", [facts["block_txids"][-1][0], tip]),
             ("blockchain.transaction.id_from_pos", [tip, 0]),
             ("blockchain.transaction.broadcast", [in_mempool]),
             ("blockchain.transaction.broadcast_package", [[in_mempool]])]
    return reqs


def test_same_answers_at_1_7(pair):
    rpc, ports, facts = pair
    requests = requests_for(facts)
    answers = {}
    with clients(ports, VERSION) as sessions:
        for kind, client in sessions.items():
            assert client.version.get("result", [None, None])[1] == VERSION, (kind,
                                                                             client.version)
            first = sum(not m.endswith(".unsubscribe") for m, _p in requests)
            answers[kind] = client.ask(requests[:first]) + client.ask(requests[first:])
    theirs = answers["electrumx"]
    succeeded = collections.Counter(m for (m, _p), r in zip(requests, theirs) if "result" in r)
    for method in METHODS:
        assert succeeded[method], method
    assert not any(succeeded[m] for m in GONE)
    states = collections.Counter(state_of(r["result"]) for (m, _p), r in zip(requests, theirs)
                                 if m == "blockchain.outpoint.get_status" and
                                 isinstance(r.get("result"), dict))
    assert len(states) == 5, states
    found = differences(VERSION, requests, answers["ours"], theirs, outcome,
                        deliberate(facts), BY_DESIGN)
    by_method = collections.Counter(line.split()[1].split("[")[0] for line in found)
    assert not found, f"{len(found)} differences {dict(by_method)}:\n" + "\n".join(found[:40])


def test_electrumx_still_does_what_deliberate_says(pair):
    """Each DELIBERATE reason, shown on one request: ElectrumX's wrong answer, and ours."""
    rpc, ports, facts = pair
    tx = next(tx for tx in facts["txs"][1:] if len(tx["vout"]) >= 2 and not any(
        out["scriptPubKey"]["hex"].startswith("6a") for out in tx["vout"]))
    txid, script = tx["txid"], tx["vout"][0]["scriptPubKey"]["hex"]
    op_return = sorted(facts["op_return_outpoints"])[0]
    right = ("blockchain.outpoint.get_status", [txid, 0, script])
    second = ("blockchain.outpoint.get_status", [txid, 1, tx["vout"][1]["scriptPubKey"]["hex"]])
    wrong = [("blockchain.outpoint.get_status", [txid, 0, hint])
             for hint in (WRONG_HINT, "")]
    loose = [("blockchain.outpoint.get_status", [txid, bad, script])
             for bad in LOOSE_INDEXES]
    scripts = [("blockchain.scriptpubkey.get_balance", [bad]) for bad in ("", TOO_BIG_SCRIPT)]
    node_errors = [("blockchain.transaction.testmempoolaccept", [raws]) for raws in ([], ["00"])]
    unspendable = ("blockchain.outpoint.get_status", [*op_return, "6a"])
    genesis = ("blockchain.outpoint.get_status", [*facts["outputs"][0][:3]])
    requests = [right, second, *wrong, *loose, *scripts, *node_errors, unspendable, genesis]
    with clients(ports, VERSION) as sessions:
        answers = {kind: client.ask(requests) for kind, client in sessions.items()}
    theirs = dict(zip(map(json.dumps, requests), answers["electrumx"]))
    ours = dict(zip(map(json.dumps, requests), answers["ours"]))

    def code(answers, request):
        return (answers[json.dumps(request)].get("error") or {}).get("code")

    for request in wrong:                                                   # (b)
        assert theirs[json.dumps(request)]["result"] == theirs[json.dumps(right)]["result"]
        assert code(ours, request) == BAD_REQUEST
    for request in loose:                                                   # (c)
        as_int = second if request[1][1] in (1.5, True) else right
        assert theirs[json.dumps(request)]["result"] == theirs[json.dumps(as_int)]["result"]
        assert code(ours, request) == BAD_REQUEST
    for request in scripts:                                                 # (d)
        assert "result" in theirs[json.dumps(request)]
        assert code(ours, request) == BAD_REQUEST
    for request in node_errors:                                             # (e)
        assert code(theirs, request) == 2 and code(ours, request) == BAD_REQUEST
    assert "funder_height" in theirs[json.dumps(unspendable)]["result"]    # (f)
    assert ours[json.dumps(unspendable)]["result"] == {}
    assert theirs[json.dumps(genesis)]["result"] == {"funder_height": 0}   # (g)
    assert ours[json.dumps(genesis)]["result"] == {}


def spendable(rpc, facts, count):
    """`count` confirmed outputs no transaction spends: [(txid, index, script, value)],
    largest first, from the node's gettxspendingprevout."""
    confirmed = {tx["txid"] for block in facts["blocks"][1:] for tx in block["tx"]}
    candidates = sorted((o for o in facts["outputs"] if o[0] in confirmed and o[3] > 100_000
                         and not o[2].startswith("6a")), key=lambda o: -o[3])[:200]
    spenders = rpc("gettxspendingprevout", [{"txid": t, "vout": n}
                                            for t, n, _s, _v in candidates])
    return [o for o, s in zip(candidates, spenders) if "spendingtxid" not in s][:count]


def payment(outputs, script_hex, fee=5000):
    """Raw hex of a transaction spending `outputs` [(txid, index, script, value)] to one
    output paying `script_hex` (the node checks amounts, not signatures)."""
    inputs = [TxInput(bytes.fromhex(t)[::-1], n, b"", 0xFFFFFFFD) for t, n, _s, _v in outputs]
    value = sum(v for *_o, v in outputs) - fee
    return Tx(2, inputs, [TxOutput(value, bytes.fromhex(script_hex))], 0).serialize().hex()


class Watcher:
    """One 1.7 session per server, subscribed alike; `step` lets the node change, waits
    for both servers, and returns what each notified: {key: last params} per server."""

    def __init__(self, rpc, ports, sessions):
        self.rpc, self.ports, self.sessions = rpc, ports, sessions
        self.scripts = {}             # script hash -> script, to read ElectrumX's (a)
        self.hashes_named = 0         # how many of ElectrumX's notifications (a) covered

    def subscribe(self, requests):
        for request in requests:
            if request[0] == "blockchain.scriptpubkey.subscribe":
                self.scripts[scripthash(request[1][0])] = request[1][0]
        return {kind: [error_or_result(r) for r in client.ask(requests)]
                for kind, client in self.sessions.items()}

    def step(self, change):
        result = change()
        wait_until_same(self.rpc, self.ports)
        return result, {kind: self._latest(kind, client.drain(1.0))
                        for kind, client in self.sessions.items()}

    def _latest(self, kind, notifications):
        latest = {}
        for method, params in notifications:
            if method == "server.ping":          # random padding, on ElectrumX's own whim
                continue
            if method == "blockchain.scriptpubkey.subscribe" and kind == "electrumx" and \
                    params[0] in self.scripts:
                params = [self.scripts[params[0]], *params[1:]]                    # (a)
                self.hashes_named += 1
            key = (method, *params[:-1])
            latest[key] = params[-1]
        return latest


def test_same_notifications_after_a_spend_a_replacement_a_block_and_a_reorg(pair):
    rpc, ports, facts = pair
    a, b = spendable(rpc, facts, 2)
    payee = "76a914" + "22" * 20 + "88ac"
    first = payment([a, b], payee)
    first_txid = Tx.from_bytes(bytes.fromhex(first)).txid_hex
    pending = facts["mempool_txs"][-1]
    mempool_output = [pending["txid"], 0, pending["vout"][0]["scriptPubKey"]["hex"]]
    with clients(ports, VERSION) as sessions:
        watch = Watcher(rpc, ports, sessions)
        steps = [("subscribing", watch.subscribe([
            ("blockchain.headers.subscribe", []),
            ("blockchain.outpoint.subscribe", list(a[:3])),
            ("blockchain.outpoint.subscribe", list(b[:3])),
            ("blockchain.outpoint.subscribe", [first_txid, 0, payee]),
            ("blockchain.outpoint.subscribe", mempool_output),
            ("blockchain.scriptpubkey.subscribe", [a[2]]),
            ("blockchain.scriptpubkey.subscribe", [payee])]))]
        _r, notified = watch.step(lambda: rpc("sendrawtransaction", first))
        steps.append(("a mempool spend", notified))
        steps.append(("the latest arrival", newest(watch)))
        replacement, notified = watch.step(lambda: rpc("regtest_replace", first_txid, 2000))
        steps.append(("an RBF replacement", notified))
        steps.append(("the latest arrival", newest(watch)))
        new_payee = rpc("getrawtransaction", replacement, 1)["vout"][0]["scriptPubKey"]["hex"]
        steps.append(("subscribing to the replacement", watch.subscribe([
            ("blockchain.outpoint.subscribe", [replacement, 0, new_payee]),
            ("blockchain.scriptpubkey.subscribe", [new_payee])])))
        _r, notified = watch.step(lambda: rpc("regtest_mine", 1))
        steps.append(("a block", notified))
        only_b = payment([b], "76a914" + "33" * 20 + "88ac", fee=7000)
        _r, notified = watch.step(lambda: rpc("regtest_reorg", 1, 2, [only_b]))
        steps.append(("a reorg", notified))
        final = watch.subscribe([("blockchain.outpoint.get_status", list(a[:3])),
                                 ("blockchain.outpoint.get_status", [replacement, 0,
                                                                     new_payee])])
        steps.append(("the statuses after the reorg", final))
    assert watch.hashes_named, "ElectrumX no longer does (a): DELIBERATE_IN_NOTIFICATIONS"
    un_spent, un_funded = final["electrumx"]
    assert un_spent == {"result": {"funder_height": a_height(rpc, a)}} and \
        un_funded == {"result": {}}
    assert [steps[n][1]["electrumx"]["txid"] for n in (2, 4)] == [first_txid, replacement]
    for what, seen in steps[1:-1]:
        if isinstance(seen["electrumx"], dict) and "txid" not in seen["electrumx"]:
            assert any(k[0] == "blockchain.outpoint.subscribe" for k in seen["electrumx"]), \
                f"ElectrumX sent no outpoint notification after {what}"
    problems = [f"after {what}: ours {seen['ours']}\n    electrumx {seen['electrumx']}"
                for what, seen in steps if seen["ours"] != seen["electrumx"]]
    assert not problems, "\n".join(problems)


def newest(watch):
    """Each server's first mempool.recent entry, the transaction that arrived last."""
    answers = watch.subscribe([("mempool.recent", [])])
    return {kind: (answer[0].get("result") or [None])[0] for kind, answer in answers.items()}


def a_height(rpc, output):
    """The height of the block confirming an output's transaction."""
    return rpc("getblockheader", rpc("getrawtransaction", output[0], 1)["blockhash"])["height"]
