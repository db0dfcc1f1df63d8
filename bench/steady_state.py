"""Steady state with a big, churning mempool: the server's CPU and memory, and exactness.

    python bench/steady_state.py [--size large] [--mempool 100000] [--rate 50] [--seconds 60]

Starts the built-in regtest node and the server (separate processes on
loopback), lets the server catch up, fills the node's mempool with
`--mempool` transactions (some in unconfirmed chains), and waits until the
server holds them all.  Then for `--seconds` it churns the mempool at
`--rate` events a second (new transactions, RBF replacements, evictions)
and mines a block of `--block-txs` of them every `--block-secs`, sampling
the server's CPU and resident memory.  Last, with the churn stopped, it
checks the server's mempool answers (get_mempool, get_balance) for sampled
scripts against a reference computed here from the node's own transactions.
"""

import argparse
import base64
import json
import random
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from load import server_usage
from processes import ROOT, free_port, start_node, start_server, stop, wait_for

sys.path.insert(0, str(ROOT))

from electrumx.chain.hashes import hash_to_hex_str, scripthash_from_script  # noqa: E402
from electrumx.chain.tx import Tx  # noqa: E402


class NodeRPC:
    """A blocking JSON-RPC client for the regtest node (batches included)."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/"
        self.auth = "Basic " + base64.b64encode(b"regtest:regtest").decode()

    def _post(self, payload):
        request = urllib.request.Request(self.url, json.dumps(payload).encode(),
                                         {"Authorization": self.auth,
                                          "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as error:      # bitcoind: RPC errors come as HTTP 500
            return json.loads(error.read())

    def call(self, method, *params):
        reply = self._post({"id": 1, "method": method, "params": list(params)})
        if reply.get("error"):
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def batch(self, method, params_list, chunk=2000):
        results = []
        for start in range(0, len(params_list), chunk):
            part = params_list[start:start + chunk]
            replies = self._post([{"id": n, "method": method, "params": p}
                                  for n, p in enumerate(part)])
            replies.sort(key=lambda r: r["id"])
            results.extend(r["result"] for r in replies)
        return results


class ElectrumClient:
    """A blocking newline-JSON client for a few hundred checks."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.next_id = 0
        self.call("server.version", "steady-state", "1.4")

    def call(self, method, *params):
        self.next_id += 1
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                      "params": list(params)}).encode() + b"\n")
        while True:
            message = json.loads(self.file.readline())
            if message.get("id") == self.next_id:
                return message

    def close(self):
        self.sock.close()


# ---- the reference -------------------------------------------------------------

def mempool_reference(node):
    """{scripthash: {txid: (height 0|-1, fee)}} and {scripthash: unconfirmed delta} from
    the node's mempool, with every spent output looked up in the node's transactions."""
    txids = node.call("getrawmempool")
    raws = node.batch("getrawtransaction", [[t, 0] for t in txids])
    txs = {t: Tx.from_bytes(bytes.fromhex(raw)) for t, raw in zip(txids, raws) if raw}
    parents = sorted({hash_to_hex_str(i.prev_hash) for tx in txs.values() for i in tx.inputs}
                     - txs.keys())
    parent_txs = {t: Tx.from_bytes(bytes.fromhex(raw)) for t, raw in
                  zip(parents, node.batch("getrawtransaction", [[t, 0] for t in parents]))}
    parent_txs.update(txs)
    history, delta = {}, {}
    for txid, tx in txs.items():
        spent = [parent_txs[hash_to_hex_str(i.prev_hash)].outputs[i.prev_idx] for i in tx.inputs]
        fee = sum(o.value for o in spent) - sum(o.value for o in tx.outputs)
        height = -1 if any(hash_to_hex_str(i.prev_hash) in txs for i in tx.inputs) else 0
        for output, sign in [(o, -1) for o in spent] + [(o, 1) for o in tx.outputs]:
            scripthash = scripthash_from_script(output.script)
            history.setdefault(scripthash, {})[txid] = (height, fee)
            delta[scripthash] = delta.get(scripthash, 0) + sign * output.value
    return history, delta


def check_answers(client, history, delta, sample, rng):
    """Mismatches between the server and the reference for `sample` scripts."""
    bad = []
    for scripthash in rng.sample(sorted(history), min(sample, len(history))):
        got = client.call("blockchain.scripthash.get_mempool", scripthash)["result"]
        got = {item["tx_hash"]: (item["height"], item["fee"]) for item in got}
        balance = client.call("blockchain.scripthash.get_balance", scripthash)["result"]
        if got != history[scripthash] or balance["unconfirmed"] != delta[scripthash]:
            bad.append(scripthash)
    return bad


# ---- the run -------------------------------------------------------------------

def admin(port, command):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(json.dumps({"id": 1, "method": command, "params": []}).encode() + b"\n")
        return json.loads(sock.makefile("rb").readline())["result"]


def fill(node, count, rng):
    """Make the mempool `count` transactions big; deep chains, so a chain's
    confirmed outputs go further."""
    made = 0
    while made < count:
        step = min(20_000, count - made)
        added = len(node.call("regtest_churn", step, rng.randrange(1 << 30), 0.6))
        if not added:
            raise SystemExit(f"the node ran out of spendable outputs after {made:,d} txs: "
                             "use a bigger --size")
        made += added
    return node.call("regtest_status")["mempool"]


def churn_one_second(node, rate, rng):
    """`rate` events: about 80% new transactions, 10% replacements, 10% evictions."""
    replaced = dropped = max(1, rate // 10)
    node.call("regtest_churn", rate - replaced - dropped, rng.randrange(1 << 30))
    pool = node.call("getrawmempool")
    for txid in rng.sample(pool, min(len(pool), replaced)):
        try:
            node.call("regtest_replace", txid, 2000)
        except RuntimeError:
            pass                     # already gone with a replaced parent
    for txid in rng.sample(pool, min(len(pool), dropped)):
        try:
            node.call("regtest_drop", txid)
        except RuntimeError:
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large")
    parser.add_argument("--mempool", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=50, help="mempool events a second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--block-secs", type=float, default=20)
    parser.add_argument("--block-txs", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=300, help="scripts checked at the end")
    parser.add_argument("--cache-mb", default="1200")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    rng = random.Random(1)
    work = Path(tempfile.mkdtemp(prefix="steady-state-"))
    node_proc, node_port = start_node(work, args.size, args.timeout)
    node = NodeRPC(node_port)
    tcp, rpc = free_port(), free_port()
    server = None
    try:
        server, log = start_server(work, node_port, CACHE_MB=args.cache_mb,
                                   SERVICES=f"tcp://127.0.0.1:{tcp},rpc://127.0.0.1:{rpc}",
                                   COST_HARD_LIMIT="0")
        wait_for(log, "serving tcp on", server, args.timeout)
        print(f"server log: {log}")
        began = time.monotonic()
        size = fill(node, args.mempool, rng)
        filled = time.monotonic()
        while admin(rpc, "getinfo")["mempool_txs"] != size:
            if time.monotonic() - filled > args.timeout:
                raise SystemExit("the server never caught up with the mempool")
            time.sleep(0.2)
        print(f"mempool of {size:,d} txs made in {filled - began:.1f}s; the server held them "
              f"all {time.monotonic() - filled:.1f}s later")

        cpu_start = server_usage(server.pid)[0]
        rss = []
        start = next_block = time.monotonic()
        while time.monotonic() - start < args.seconds:
            second = time.monotonic()
            churn_one_second(node, args.rate, rng)
            if second >= next_block + args.block_secs:
                node.call("regtest_mine", 1, 0, None, args.block_txs)
                next_block = second
            rss.append(server_usage(server.pid)[1])
            time.sleep(max(0.0, 1.0 - (time.monotonic() - second)))
        elapsed = time.monotonic() - start
        cpu = server_usage(server.pid)[0] - cpu_start
        size = node.call("regtest_status")["mempool"]
        print(f"steady state for {elapsed:.0f}s at {args.rate} events/s, a block of "
              f"{args.block_txs:,d} txs every {args.block_secs:g}s, mempool ~{size:,d} txs: "
              f"server CPU {100 * cpu / elapsed:.1f}% of one core, RSS median "
              f"{sorted(rss)[len(rss) // 2]:.0f} MB, max {max(rss):.0f} MB")

        settled = time.monotonic()
        while admin(rpc, "getinfo")["mempool_txs"] != size:
            if time.monotonic() - settled > 120:
                raise SystemExit("the server did not settle on the node's mempool")
            time.sleep(0.2)
        history, delta = mempool_reference(node)
        client = ElectrumClient(tcp)
        bad = check_answers(client, history, delta, args.sample, rng)
        client.close()
        print(f"exactness: {args.sample - len(bad)}/{args.sample} sampled scripts' mempool "
              f"history, heights, fees and unconfirmed balance match the node"
              + (f"; mismatches: {bad[:5]}" if bad else ""))
    finally:
        if server is not None:
            stop(server)
        stop(node_proc)


if __name__ == "__main__":
    main()
