"""How long a sync freezes the server's reactor: admin RPC `getinfo` timed every 20 ms.

    python bench/stall_probe.py [--size large | --mainnet-like] [--cache-mb 1200]
                                [--runs 3] [--server-root DIR ...]

Runs the regtest node and the server (`twistd -n electrumx`, admin RPC on
127.0.0.1) as separate processes, from an empty database until the server
logs that it caught up.  Meanwhile a probe connects to the admin RPC every
`--interval` seconds and times the `getinfo` round trip: a reply that takes
long means the reactor was busy (a flush, a long stretch of block
processing).  Prints the sync's tx/s and the p50/p99/max of those times.

`--mainnet-like` syncs a chain of small blocks (51 transactions a block on
average) with almost one new script per output, instead of a size preset.
With several `--server-root` (source trees, e.g. one exported from git) the
runs alternate between them, A B A B, and the medians of each are printed.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from processes import (ROOT, TWISTD, free_port, index_tx_counts, server_env, start_node, stop,
                       wait_for)

MAINNET_LIKE = dict(blocks=10_000, txs=510_000, scripts=1_200_000, zipf=0.6)
"""Mainnet-like shape: small blocks, a new script for most outputs."""


def serve_chain(port: int, shape: dict):
    """Run the regtest node on a chain of `shape` (WorkloadParams' fields) until killed."""
    sys.path.insert(0, str(ROOT))
    from twisted.internet import reactor

    from electrumx.logs import Logger
    from electrumx.regtest.cache import load_or_generate
    from electrumx.regtest.node import RegtestNode
    from electrumx.regtest.service import RegtestNodeService
    from electrumx.regtest.workload import WorkloadParams
    chain = load_or_generate(WorkloadParams(**shape), None, Logger())
    service = RegtestNodeService(reactor, RegtestNode(chain.blocks, None, reactor),
                                 "127.0.0.1", port, "regtest", "regtest")
    service.startService()
    print(f"regtest node serving on 127.0.0.1:{port}", flush=True)      # what wait_for reads
    reactor.run()


def start_shaped_node(work: Path, shape: dict, timeout: float):
    port = free_port()
    log = work / "node.log"
    node = subprocess.Popen([sys.executable, __file__, "--node-only", str(port),
                             json.dumps(shape)], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, cwd=work)
    wait_for(log, "serving on", node, timeout)
    return node, port


def getinfo_secs(port: int) -> float | None:
    """Seconds for one admin `getinfo` round trip; None if the RPC is not up yet."""
    started = time.monotonic()
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getinfo", "params": []})
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(request.encode() + b"\n")
            while not sock.recv(65536).endswith(b"\n"):
                pass
    except OSError:
        return None
    return time.monotonic() - started


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def one_sync(work: Path, node_port: int, server_root: str, args):
    """Sync once with the server from `server_root`: (tx/s, [getinfo seconds], log)."""
    rpc_port = free_port()
    db = work / f"db-{time.monotonic_ns()}"
    path = os.pathsep.join(filter(None, [server_root, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path,
               **server_env(work, node_port, db.name, CACHE_MB=args.cache_mb,
                            SERVICES=f"rpc://127.0.0.1:{rpc_port}"))
    log = work / f"{db.name}.log"
    server = subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "electrumx"],
                              stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                              cwd=work)
    started = time.monotonic()
    times = []
    profiler = None
    if args.profile:
        profiler = subprocess.Popen(["py-spy", "record", "-r", "100", "--format", "raw",
                                     "-o", args.profile, "--pid", str(server.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + args.timeout
        while "caught up to height" not in log.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server stopped or timed out:\n{log.read_text()[-2000:]}")
            secs = getinfo_secs(rpc_port)
            if secs is not None:
                times.append(secs)
                if secs >= args.show_over:
                    print(f"  getinfo took {secs * 1000:.0f} ms, "
                          f"{time.monotonic() - started:.1f}s into the sync", flush=True)
            time.sleep(args.interval)
        wall = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
        if profiler is not None:
            profiler.wait()
    txs = synced_txs(log)
    return txs / wall, times, log


def synced_txs(log: Path) -> int:
    """Transactions in the chain synced, from the server's index."""
    return index_tx_counts(log.with_suffix(""))[-1]


def summary(rate, times):
    ms = [t * 1000 for t in times]
    return (f"{rate:,.0f} tx/s; getinfo n={len(ms)} p50 {percentile(ms, 0.5):.1f} ms "
            f"p99 {percentile(ms, 0.99):.1f} ms max {max(ms):.1f} ms")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--node-only":
        serve_chain(int(sys.argv[2]), json.loads(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large")
    parser.add_argument("--mainnet-like", action="store_true",
                        help=f"a chain of small blocks instead of --size: {MAINNET_LIKE}")
    parser.add_argument("--cache-mb", default="1200")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--runs", type=int, default=1, help="syncs per server root")
    parser.add_argument("--server-root", action="append",
                        help="source tree to run the server from (repeatable; default ours)")
    parser.add_argument("--show-over", type=float, default=0.1,
                        help="print each getinfo slower than this many seconds")
    parser.add_argument("--profile", help="py-spy the server at 100 Hz into this file "
                                           "(raw collapsed stacks)")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    roots = args.server_root or [str(ROOT)]
    work = Path(tempfile.mkdtemp(prefix="stall-probe-"))
    if args.mainnet_like:
        node, port = start_shaped_node(work, MAINNET_LIKE, args.timeout)
    else:
        node, port = start_node(work, args.size, args.timeout)
    results = {root: [] for root in roots}
    try:
        for run in range(args.runs):
            for root in roots:
                rate, times, log = one_sync(work, port, root, args)
                results[root].append((rate, times))
                print(f"run {run + 1} {root}: {summary(rate, times)}", flush=True)
    finally:
        stop(node)
    for root, runs in results.items():
        median = statistics.median
        ms = [[t * 1000 for t in times] for _rate, times in runs]
        print(f"median of {len(runs)} for {root}: {median(r for r, _t in runs):,.0f} tx/s; "
              f"getinfo p50 {median(percentile(m, 0.5) for m in ms):.1f} ms, "
              f"p99 {median(percentile(m, 0.99) for m in ms):.1f} ms, "
              f"max {median(max(m) for m in ms):.1f} ms")


if __name__ == "__main__":
    main()
