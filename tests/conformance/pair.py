"""Our server and ElectrumX 2.0 side by side on one regtest node: what the conformance
modules share.

`running_pair` starts the built-in node (its own process) and both servers on it;
`Client` speaks the Electrum protocol over TCP and keeps the notifications it
receives; `wait_until_same` waits until both servers show the node's tip and
mempool; `differences` lists the answers that differ, except for the reasons a
module declares.

ElectrumX comes from bench/setup_electrumx.sh.  Without it the tests skip,
unless ELECTRUMX_REQUIRE_REFERENCE=1 (as in CI), when they fail.
"""

import base64
import contextlib
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from processes import (READY, electrumx_python, free_port, start,  # noqa: E402
                       start_node, stop, wait_for)

SETTINGS = dict(DAEMON_POLL_INTERVAL_BLOCKS="100", DAEMON_POLL_INTERVAL_MEMPOOL="100",
                CACHE_MB="64", COST_SOFT_LIMIT="1000000000", COST_HARD_LIMIT="2000000000",
                MAX_SESSIONS="100", REQUEST_TIMEOUT="60")
KINDS = ("ours", "electrumx")
LIMIT = int(os.environ.get("CONFORMANCE_SHOW", "300"))


class NodeRPC:
    """Blocking JSON-RPC to the regtest node."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/"
        self.auth = "Basic " + base64.b64encode(b"regtest:regtest").decode()

    def __call__(self, method, *params):
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
    """One Electrum session over TCP: `ask` pipelines requests and returns replies in order.

    Notifications that arrive meanwhile, or while `drain` waits, are kept in
    `notifications` as (method, params), in arrival order.
    """

    def __init__(self, port, version):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buffer = b""
        self.next_id = 0
        self.notifications = []
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
            message = self._read()
            if message.get("id") is not None:
                answers[message["id"]] = message
        return [answers[i] for i in ids]

    def _read(self):
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        message = json.loads(line)
        if message.get("id") is None and "method" in message:
            self.notifications.append((message["method"], message.get("params")))
        return message

    def drain(self, quiet=0.5):
        """Keep reading notifications until none came for `quiet` seconds; take them."""
        self.sock.settimeout(quiet)
        try:
            while True:
                self._read()
        except (socket.timeout, TimeoutError):
            pass
        finally:
            self.sock.settimeout(120)
        taken, self.notifications = self.notifications, []
        return taken

    def close(self):
        self.sock.close()


@contextlib.contextmanager
def clients(ports, version):
    """{kind: Client} of one session per server, negotiated at `version`, closed after."""
    opened = {}
    try:
        for kind, port in ports.items():
            opened[kind] = Client(port, version)
        yield opened
    finally:
        for client in opened.values():
            client.close()


def require_electrumx():
    if electrumx_python() is None:
        message = "ElectrumX is not installed: run bench/setup_electrumx.sh"
        if os.environ.get("ELECTRUMX_REQUIRE_REFERENCE"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def running_pair(size="tiny", churn_seed=1, churn=25):
    """(node rpc, {kind: port}) of the node, with `churn` mempool txs, and both servers
    caught up with it; everything is stopped and removed after."""
    require_electrumx()
    work = Path(tempfile.mkdtemp(prefix="conformance-"))
    procs = []
    try:
        node, node_port = start_node(work, size, 120, cache_dir=work / "chain-cache")
        procs.append(node)
        rpc = NodeRPC(node_port)
        rpc("regtest_churn", churn, churn_seed)
        ports = {}
        logs = {}
        for kind in KINDS:
            ports[kind] = free_port()
            proc, logs[kind] = start(kind, work, node_port, SERVICES=f"tcp://127.0.0.1:"
                                     f"{ports[kind]}", **SETTINGS)
            procs.append(proc)
        for (kind, log), proc in zip(logs.items(), procs[1:]):
            wait_for(log, READY[kind], proc, 120)
        wait_until_same(rpc, ports)
        yield rpc, ports
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def scripthash(script_hex):
    return hashlib.sha256(bytes.fromhex(script_hex)).digest()[::-1].hex()


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
    return {"height": height, "blocks": blocks,
            "block_txids": [[t["txid"] for t in b["tx"]] for b in blocks],
            "mempool": mempool, "mempool_txs": mempool_txs, "scripts": sorted(scripts),
            "scripthashes": sorted(scripthash(s) for s in scripts)}


def wait_until_same(rpc, ports, timeout=60):
    """Until both servers are at the node's tip and show every mempool tx."""
    deadline = time.monotonic() + timeout
    while True:
        height = rpc("getblockcount")
        tip = rpc("getblockhash", height)
        mempool_txs = [rpc("getrawtransaction", t, 1) for t in rpc("getrawmempool")]
        pending = {tx["txid"] for tx in mempool_txs}
        touched = {scripthash(o["scriptPubKey"]["hex"]) for tx in mempool_txs
                   for o in tx["vout"]}
        root = checkpoint_root(rpc, height)
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
                [proof] = client.ask([("blockchain.block.header", [0, height])])
            finally:
                client.close()
            result = header.get("result") or {}
            seen = {e["tx_hash"] for a in answers for e in a.get("result") or []}
            if result.get("height") != height or \
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


def error_or_result(reply):
    """What must agree by default: the result, or the error code (messages are worded
    differently)."""
    if reply.get("error"):
        return {"error": reply["error"].get("code")}
    return {"result": reply.get("result")}


def differences(label, requests, ours, theirs, outcome=error_or_result, deliberate=None,
                both_succeed=()):
    """The differing answers, as readable lines, except to requests a `deliberate`
    reason {reason: applies(method, params)} covers; for methods in `both_succeed` it is
    enough that both servers succeed (or both fail)."""
    found = []
    for (method, params), a, b in zip(requests, ours, theirs):
        if any(applies(method, params) for applies in (deliberate or {}).values()):
            continue
        if method in both_succeed:
            same = bool(a.get("error")) == bool(b.get("error"))
        else:
            same = outcome(method, a) == outcome(method, b)
        if same:
            continue
        a, b = ({k: r[k] for k in ("result", "error") if r.get(k) is not None} for r in (a, b))
        found.append(f"{label} {method}{params}: ours {str(a)[:LIMIT]} "
                     f"electrumx {str(b)[:LIMIT]}")
    return found
