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

import base64
import collections
import hashlib
import json
import operator
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from processes import (READY, electrumx_python, free_port, start,  # noqa: E402
                       start_node, stop, wait_for)

SETTINGS = dict(DAEMON_POLL_INTERVAL_BLOCKS="100", DAEMON_POLL_INTERVAL_MEMPOOL="100",
                CACHE_MB="64", COST_SOFT_LIMIT="1000000000", COST_HARD_LIMIT="2000000000",
                MAX_SESSIONS="100", REQUEST_TIMEOUT="60")
BY_DESIGN = {"server.banner", "server.donation_address", "server.peers.subscribe",
             "server.add_peer"}
"""Methods whose answers are each server's own: only both must succeed."""
FEATURES_COMPARED = ("genesis_hash", "hash_function", "pruning", "protocol_min")
LIMIT = int(os.environ.get("CONFORMANCE_SHOW", "300"))
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


class NodeRPC:
    """Blocking JSON-RPC to the regtest node."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/"
        self.auth = "Basic " + base64.b64encode(b"regtest:regtest").decode()

    def __call__(self, method, *params):
        import urllib.error
        import urllib.request
        body = json.dumps({"id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Authorization": self.auth})
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                answer = json.loads(reply.read())
        except urllib.error.HTTPError as e:
            answer = json.loads(e.read())
        if answer["error"]:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]


class Client:
    """One Electrum session over TCP: `ask` pipelines requests and returns replies in order."""

    def __init__(self, port, version):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.reader = self.sock.makefile("rb")
        self.next_id = 0
        [self.version] = self.ask([("server.version", ["conformance", version])])

    def ask(self, requests, window=100):
        replies = []
        for first in range(0, len(requests), window):
            replies += self._ask(requests[first:first + window])
        return replies

    def _ask(self, requests):
        ids = []
        lines = []
        for method, params in requests:
            self.next_id += 1
            ids.append(self.next_id)
            lines.append(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                     "params": params}))
        self.sock.sendall(("\n".join(lines) + "\n").encode())
        answers = {}
        while len(answers) < len(ids):
            line = self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            message = json.loads(line)
            if "id" in message and message["id"] is not None:     # not a notification
                answers[message["id"]] = message
        return [answers[i] for i in ids]

    def close(self):
        self.sock.close()


def outcome(method, reply):
    """What must agree: the result, or the error code.

    listunspent's mempool outputs (height 0) come in no defined order
    (ElectrumX's follow a set's iteration), so they are compared sorted.
    """
    if reply.get("error"):
        return {"error": reply["error"].get("code")}
    result = reply.get("result")
    if method == "blockchain.scripthash.listunspent" and isinstance(result, list):
        confirmed = [u for u in result if u["height"] > 0]
        pending = sorted((u for u in result if u["height"] <= 0),
                         key=lambda u: (u["tx_hash"], u["tx_pos"]))
        result = confirmed + pending
    return {"result": result}


@pytest.fixture(scope="module")
def servers():
    """(node rpc, {kind: port}, chain facts) after sync, mempool churn and a reorg."""
    if electrumx_python() is None:
        message = "ElectrumX is not installed: run bench/setup_electrumx.sh"
        if os.environ.get("ELECTRUMX_REQUIRE_REFERENCE"):
            pytest.fail(message)
        pytest.skip(message)
    work = Path(tempfile.mkdtemp(prefix="conformance-"))
    procs = []
    try:
        node, node_port = start_node(work, "tiny", 120, cache_dir=work / "chain-cache")
        procs.append(node)
        rpc = NodeRPC(node_port)
        rpc("regtest_churn", 25, 1)
        ports = {}
        logs = {}
        for kind in ("ours", "electrumx"):
            ports[kind] = free_port()
            proc, logs[kind] = start(kind, work, node_port, SERVICES=f"tcp://127.0.0.1:"
                                     f"{ports[kind]}", **SETTINGS)
            procs.append(proc)
        for (kind, log), proc in zip(logs.items(), procs[1:]):
            wait_for(log, READY[kind], proc, 120)
        wait_until_same(rpc, ports)
        fork = rpc("regtest_reorg", 3, 4, [], 2)
        rpc("regtest_churn", 15, 2)
        wait_until_same(rpc, ports)
        yield rpc, ports, dict(chain_facts(rpc), reorged=fork)
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def chain_facts(rpc):
    """Heights, blocks' txids, every script paid, and the mempool, from the node."""
    height = rpc("getblockcount")
    blocks = [rpc("getblock", rpc("getblockhash", h), 2) for h in range(height + 1)]
    mempool = rpc("getrawmempool")
    mempool_txs = [rpc("getrawtransaction", t, 1) for t in mempool]
    scripts = set()
    for tx in [t for b in blocks for t in b["tx"]] + mempool_txs:
        for out in tx["vout"]:
            scripts.add(out["scriptPubKey"]["hex"])
    scripthashes = sorted(hashlib.sha256(bytes.fromhex(s)).digest()[::-1].hex()
                          for s in scripts)
    return {"height": height, "block_txids": [[t["txid"] for t in b["tx"]] for b in blocks],
            "mempool": mempool, "mempool_txs": mempool_txs, "scripthashes": scripthashes}


def wait_until_same(rpc, ports, timeout=60):
    """Until both servers are at the node's tip and show every mempool tx."""
    deadline = time.monotonic() + timeout
    while True:
        facts = chain_facts(rpc)
        tip = rpc("getblockhash", facts["height"])
        pending = set(facts["mempool"])
        touched = {hashlib.sha256(bytes.fromhex(o["scriptPubKey"]["hex"])).digest()[::-1].hex()
                   for tx in facts["mempool_txs"] for o in tx["vout"]}
        root = checkpoint_root(rpc, facts["height"])
        ready = True
        for port in ports.values():
            client = Client(port, "1.4")
            try:
                [header] = client.ask([("blockchain.headers.subscribe", [])])
                answers = client.ask([("blockchain.scripthash.get_mempool", [s])
                                      for s in sorted(touched)])
                # One proof asked alone: ElectrumX 2.0 extends its header merkle cache
                # without a lock, so concurrent proofs just after a new tip can come out
                # wrong.  Asked alone, the first one is right and settles the cache.
                [proof] = client.ask([("blockchain.block.header", [0, facts["height"]])])
            finally:
                client.close()
            result = header.get("result") or {}
            seen = {e["tx_hash"] for a in answers for e in a.get("result") or []}
            if result.get("height") != facts["height"] or \
                    _header_hash(result.get("hex", "")) != tip or seen != pending or \
                    (proof.get("result") or {}).get("root") != root:
                ready = False
        if ready:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the servers did not catch up with the node")
        time.sleep(0.2)


def checkpoint_root(rpc, height):
    """The merkle root of the block hashes up to `height`, as a cp_height proof gives it."""
    from electrumx.chain.merkle import merkle_root
    hashes = [bytes.fromhex(rpc("getblockhash", h))[::-1] for h in range(height + 1)]
    return merkle_root(hashes)[::-1].hex()


def _header_hash(header_hex):
    raw = bytes.fromhex(header_hex)
    return hashlib.sha256(hashlib.sha256(raw).digest()).digest()[::-1].hex()


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


def compare(version, ours, theirs, requests):
    """The differences that are neither by design nor deliberate, as readable lines."""
    differences = []
    for (method, params), a, b in zip(requests, ours, theirs):
        if any(applies(method, params) for applies in DELIBERATE.values()):
            continue
        if method in BY_DESIGN:
            if bool(a.get("error")) != bool(b.get("error")):
                differences.append(f"{version} {method}{params}: ours {a} electrumx {b}")
            continue
        same = outcome(method, a), outcome(method, b)
        if method == "server.features" and "result" in a and "result" in b:
            same = ({k: r["result"].get(k) for k in FEATURES_COMPARED} for r in (a, b))
        if operator.eq(*same):
            continue
        a, b = ({k: r[k] for k in ("result", "error") if r.get(k) is not None} for r in (a, b))
        differences.append(f"{version} {method}{params}: ours {str(a)[:LIMIT]} "
                           f"electrumx {str(b)[:LIMIT]}")
    return differences


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
    differences = compare(version, answers["ours"], answers["electrumx"], requests)
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(differences[:40])


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
