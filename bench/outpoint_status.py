"""blockchain.outpoint.get_status latency, for outputs of quiet scripts and of the busiest one.

    python bench/outpoint_status.py --size large --requests 2000

Starts the built-in regtest node and our server on loopback, reads the whole
chain back from the node (getblock, verbosity 2) to learn every output, its
script and its spender, then asks protocol 1.7's get_status over one blocking
connection, one request at a time, for two sets of outputs:

- quiet: outputs of scripts with at most QUIET_HISTORY transactions;
- busiest: outputs of the script with the longest history.

Each set is half spent, half unspent where the chain allows.  Every answer is
checked against the chain (funder height; spender and its height), so a fast
wrong answer cannot pass.  Prints one JSON object: per set the requests, p50,
p99 and max (ms) and mismatches, with the script's history length, and the
database's size on disk.
"""

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from clients import ElectrumClient, NodeRPC
from load import percentile
from processes import READY, dir_size, free_port, start_node, start_server, stop, wait_for

QUIET_HISTORY = 2
RPC_CHUNK = 50


def read_chain(rpc):
    """(outputs {(txid, n): script hex}, expected {(txid, n): status}, script tx counts)."""
    hashes = rpc.batch("getblockhash", [[h] for h in range(rpc.call("getblockcount") + 1)])
    outputs, expected, history = {}, {}, Counter()
    for start in range(1, len(hashes), RPC_CHUNK):
        blocks = rpc.batch("getblock", [[h, 2] for h in hashes[start:start + RPC_CHUNK]])
        for height, block in enumerate(blocks, start):
            for tx in block["tx"]:
                _apply(tx, height, outputs, expected, history)
    # The mempool last, parents before children (a child of a mempool parent is at -1).
    mempool = {tx["txid"]: tx for tx in rpc.batch(
        "getrawtransaction", [[t, 1] for t in rpc.call("getrawmempool")])}
    done = set()

    def visit(txid):
        if txid in done or txid not in mempool:
            return
        done.add(txid)
        inputs = [vin.get("txid") for vin in mempool[txid]["vin"]]
        for parent in inputs:
            visit(parent)
        _apply(mempool[txid], -1 if any(p in mempool for p in inputs) else 0,
               outputs, expected, history)
    for txid in sorted(mempool):
        visit(txid)
    return outputs, expected, history


def _apply(tx, height, outputs, expected, history):
    """Note a transaction's spends and outputs (OP_RETURN ones are never indexed)."""
    touched = set()
    for vin in tx["vin"]:
        outpoint = (vin.get("txid"), vin.get("vout"))
        if outpoint in outputs:
            expected[outpoint].update(spender_txhash=tx["txid"], spender_height=height)
            touched.add(outputs[outpoint])
    for out in tx["vout"]:
        script = out["scriptPubKey"]["hex"]
        if script.startswith("6a"):
            continue
        outputs[(tx["txid"], out["n"])] = script
        expected[(tx["txid"], out["n"])] = {"funder_height": height}
        touched.add(script)
    history.update(touched)


def pick(outpoints, expected, count, rng):
    """Up to `count` outpoints, half spent and half unspent where there are enough."""
    spent = [o for o in outpoints if "spender_txhash" in expected[o]]
    unspent = [o for o in outpoints if "spender_txhash" not in expected[o]]
    half = count // 2
    chosen = rng.sample(spent, min(half, len(spent)))
    chosen += rng.sample(unspent, min(count - len(chosen), len(unspent)))
    return chosen


def measure(port, outputs, expected, outpoints):
    latencies, wrong = [], 0
    client = ElectrumClient(port, "outpoint-bench", "1.7")
    try:
        for txid, n in outpoints:
            began = time.perf_counter()
            reply = client.call("blockchain.outpoint.get_status", txid, n, outputs[(txid, n)])
            latencies.append(time.perf_counter() - began)
            if reply.get("result") != expected[(txid, n)]:
                wrong += 1
    finally:
        client.close()
    latencies.sort()
    return {"requests": len(latencies),
            **{name: round(1000 * percentile(latencies, p), 3) for name, p in
               (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
            "mismatches": wrong}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--requests", type=int, default=2000, help="per set")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="outpoint-bench-") as tmp:
        work = Path(tmp)
        node = server = None
        try:
            node, node_port = start_node(work, args.size, args.timeout)
            port = free_port()
            server, log = start_server(work, node_port, SERVICES=f"tcp://127.0.0.1:{port}")
            wait_for(log, READY["ours"], server, args.timeout)
            outputs, expected, history = read_chain(NodeRPC(node_port))
            busiest, busiest_count = history.most_common(1)[0]
            quiet = [o for o, script in outputs.items() if history[script] <= QUIET_HISTORY]
            busy = [o for o, script in outputs.items() if script == busiest]
            result = {
                "size": args.size, "outputs": len(outputs),
                "quiet": dict(history_max=QUIET_HISTORY, **measure(
                    port, outputs, expected, pick(quiet, expected, args.requests, rng))),
                "busiest": dict(history=busiest_count, **measure(
                    port, outputs, expected, pick(busy, expected, args.requests, rng))),
                "db_bytes": dir_size(work / "db"),
            }
        finally:
            stop(server, node)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
