"""Steady state with a big, churning mempool: the server's CPU and memory, and exactness.

    python bench/steady_state.py [--size large] [--mempool 100000] [--rate 50] [--seconds 60]
                                 [--server ours|electrumx|both]

Starts the built-in regtest node and the server (separate processes on
loopback), lets the server catch up, fills the node's mempool with
`--mempool` transactions (some in unconfirmed chains), and waits until the
server holds them all.  Then for `--seconds` it churns the mempool at
`--rate` events a second (new transactions, RBF replacements, evictions)
and mines a block of `--block-txs` of them every `--block-secs`, sampling
the server's CPU and resident memory.  Last, with the churn stopped, it
checks the server's mempool answers (get_mempool, get_balance) for sampled
scripts against a reference computed here from the node's own transactions.
With `--server both` it runs ours, then ElectrumX (bench/setup_electrumx.sh),
on the same node and the same workload seed.
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from clients import ElectrumClient, NodeRPC
from load import server_usage
from processes import READY, ROOT, free_port, start, start_node, stop, wait_for

sys.path.insert(0, str(ROOT))

from electrumx.chain.hashes import hash_to_hex_str, scripthash_from_script  # noqa: E402
from electrumx.chain.tx import Tx  # noqa: E402


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


def wait_until_exact(tcp, node, rng, timeout, sample=30):
    """Seconds until the server's mempool answers match the node's, on a small sample."""
    started = time.monotonic()
    history, delta = mempool_reference(node)
    client = ElectrumClient(tcp, "steady-state")
    try:
        while check_answers(client, history, delta, sample, rng):
            if time.monotonic() - started > timeout:
                raise SystemExit("the server never caught up with the node's mempool")
            time.sleep(0.5)
    finally:
        client.close()
    return time.monotonic() - started


def run(kind, args, work, node_port):
    """One server through fill, churn and check; a dict of its figures."""
    rng = random.Random(args.seed)
    node = NodeRPC(node_port)
    tcp, rpc = free_port(), free_port()
    server, log = start(kind, work, node_port, CACHE_MB=args.cache_mb,
                        SERVICES=f"tcp://127.0.0.1:{tcp},rpc://127.0.0.1:{rpc}",
                        COST_HARD_LIMIT="0", COST_SOFT_LIMIT="0")
    try:
        wait_for(log, READY[kind], server, args.timeout)
        print(f"{kind}: log {log}")
        size = fill(node, args.mempool, rng)
        held = wait_until_exact(tcp, node, rng, args.timeout)
        print(f"{kind}: mempool of {size:,d} txs; the server's answers matched it "
              f"{held:.1f}s later")
        cpu_start = server_usage(server.pid)[0]
        rss = []
        start_time = next_block = time.monotonic()
        while time.monotonic() - start_time < args.seconds:
            second = time.monotonic()
            churn_one_second(node, args.rate, rng)
            if second >= next_block + args.block_secs:
                node.call("regtest_mine", 1, 0, None, args.block_txs)
                next_block = second
            rss.append(server_usage(server.pid)[1])
            time.sleep(max(0.0, 1.0 - (time.monotonic() - second)))
        elapsed = time.monotonic() - start_time
        cpu = 100 * (server_usage(server.pid)[0] - cpu_start) / elapsed
        size = node.call("regtest_status")["mempool"]
        figures = {"cpu_percent": cpu, "rss_median_mb": sorted(rss)[len(rss) // 2],
                   "rss_max_mb": max(rss), "mempool": size, "seconds": elapsed}
        print(f"{kind}: steady state for {elapsed:.0f}s at {args.rate} events/s, a block of "
              f"{args.block_txs:,d} txs every {args.block_secs:g}s, mempool ~{size:,d} txs: "
              f"CPU {cpu:.1f}% of one core, RSS median {figures['rss_median_mb']:.0f} MB, "
              f"max {figures['rss_max_mb']:.0f} MB")
        wait_until_exact(tcp, node, rng, 120)
        history, delta = mempool_reference(node)
        client = ElectrumClient(tcp, "steady-state")
        bad = check_answers(client, history, delta, args.sample, rng)
        client.close()
        figures["mismatches"] = len(bad)
        print(f"{kind}: exactness: {args.sample - len(bad)}/{args.sample} sampled scripts' "
              f"mempool history, heights, fees and unconfirmed balance match the node")
        return figures
    finally:
        stop(server)
        node.call("regtest_mine", 1)          # empty the mempool for whoever runs next


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
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", choices=("ours", "electrumx", "both"), default="ours")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    kinds = ("ours", "electrumx") if args.server == "both" else (args.server,)
    work = Path(tempfile.mkdtemp(prefix="steady-state-"))
    node_proc, node_port = start_node(work, args.size, args.timeout)
    try:
        results = {kind: run(kind, args, work, node_port) for kind in kinds}
    finally:
        stop(node_proc)
    if len(results) == 2:
        ours, theirs = results["ours"], results["electrumx"]
        print("| steady state | ours | ElectrumX | ratio |\n|---|---:|---:|---:|")
        for key in ("cpu_percent", "rss_median_mb", "rss_max_mb"):
            print(f"| {key} | {ours[key]:.1f} | {theirs[key]:.1f} | "
                  f"{ours[key] / theirs[key]:.2f} |")


if __name__ == "__main__":
    main()
