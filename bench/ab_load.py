"""Two builds of our server under the same query load, alternated: before vs after a change.

    python bench/ab_load.py --base DIR [--size small] [--connections 16,100] \
        [--seconds 8] [--rounds 3]

DIR holds the other build's source tree (e.g. `git archive main | tar -x -C DIR`);
the build under test is this checkout.  One regtest node serves the chain; the
first server syncs it, its database is copied for the second (both then serve
the same index), and each takes `--warm-up` seconds of untimed load.  For
every connection count and mix (bench/load.py's WALLET_MIX and FULL_MIX) the
two servers take the load in turn, `--rounds` times each, the order swapped
every round (A B, B A, ...), so that
a shared machine's drift and the slot after the other's load hit both alike.
It prints each run and the medians of req/s, p50/p99 latency and the server's
CPU time per request (the measure least moved by a busy machine: the client
is one Python process and often the bottleneck), with the ratio of after to
before.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, task

from load import MIXES, ChainFacts, Load, Workload, generated_chain, server_usage
from processes import CAUGHT_UP, ROOT, TWISTD, free_port, server_env, start_node, stop, wait_for

SETTINGS = dict(MAX_SESSIONS="1000", COST_SOFT_LIMIT="0", COST_HARD_LIMIT="0")


def start(source: Path, work: Path, node_port: int, name: str, port: int):
    """`twistd -n electrumx` from the tree at `source`, on the database `work/name`."""
    env = dict(os.environ, PYTHONPATH=str(source),
               **server_env(work, node_port, name, SERVICES=f"tcp://127.0.0.1:{port}",
                            **SETTINGS))
    log = work / f"{name}.log"
    proc = subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "electrumx"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=work)
    return proc, log


async def one_load(reactor, port, pid, facts, mix, connections, seconds, seed):
    workload = Workload(facts, MIXES[mix], random.Random(seed))
    load = Load(reactor, port, workload, connections, seconds, 10**9)
    cpu_before = server_usage(pid)[0]
    await load.run()
    row = load.summary()["all"]
    row["cpu_us"] = 1e6 * (server_usage(pid)[0] - cpu_before) / max(1, row["requests"])
    if load.errors or row["mismatches"]:
        print(f"  errors {load.errors} mismatches {row['mismatches']}")
    return row


async def run(reactor, args):
    work = Path(tempfile.mkdtemp(prefix="ab-load-"))
    node, node_port = start_node(work, args.size, args.timeout)
    procs = [node]
    reactor.addSystemEventTrigger("before", "shutdown", lambda: stop(*procs))   # SIGTERM
    try:
        facts = ChainFacts(generated_chain(args.size))
        ports = {"before": free_port(), "after": free_port()}
        first, log = start(ROOT, work, node_port, "after", ports["after"])
        procs.append(first)
        wait_for(log, CAUGHT_UP, first, args.timeout)
        stop(first)
        procs.remove(first)
        shutil.copytree(work / "after", work / "before")
        servers = {}
        for name, source in (("before", Path(args.base)), ("after", ROOT)):
            proc, log = start(source, work, node_port, name, ports[name])
            procs.append(proc)
            servers[name] = (proc, log)
        for name, (proc, log) in servers.items():
            wait_for(log, "serving tcp on", proc, args.timeout)
            wait_for(log, CAUGHT_UP, proc, args.timeout)
        print(f"work dir {work}; pids " +
              ", ".join(f"{name} {proc.pid}" for name, (proc, _) in servers.items()))
        await task.deferLater(reactor, args.pause, lambda: None)
        for name in ("before", "after"):        # caches and page cache filled, not timed
            await one_load(reactor, ports[name], servers[name][0].pid, facts, "full",
                           max(args.connections), args.warm_up, seed=99)
        for connections in args.connections:
            for mix in args.mixes:
                rows = {"before": [], "after": []}
                for round_ in range(args.rounds):
                    order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                    for name in order:
                        row = await one_load(reactor, ports[name], servers[name][0].pid,
                                             facts, mix, connections, args.seconds,
                                             seed=round_)
                        rows[name].append(row)
                        print(f"{args.size} {mix} c={connections} round {round_} {name}: "
                              f"{row['req_s']:.0f} req/s p50 {row['p50']:.2f} "
                              f"p99 {row['p99']:.2f} ms, {row['cpu_us']:.0f} us CPU/request",
                              flush=True)
                summary(args.size, mix, connections, rows)
    finally:
        stop(*procs)


def summary(size, mix, connections, rows):
    med = {name: {key: statistics.median(r[key] for r in runs)
                  for key in ("req_s", "p50", "p99", "cpu_us")} for name, runs in rows.items()}
    b, a = med["before"], med["after"]
    print(f"MEDIAN {size} {mix} c={connections}: req/s {b['req_s']:.0f} -> {a['req_s']:.0f} "
          f"(x{a['req_s'] / b['req_s']:.2f}); p50 {b['p50']:.2f} -> {a['p50']:.2f} ms "
          f"(x{a['p50'] / b['p50']:.2f}); p99 {b['p99']:.2f} -> {a['p99']:.2f} ms "
          f"(x{a['p99'] / b['p99']:.2f}); CPU/request {b['cpu_us']:.0f} -> "
          f"{a['cpu_us']:.0f} us (x{a['cpu_us'] / b['cpu_us']:.2f})", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="source tree of the build before")
    parser.add_argument("--size", default="small", help="regtest chain preset")
    parser.add_argument("--connections", default="16,100")
    parser.add_argument("--mixes", default="wallet,full")
    parser.add_argument("--seconds", type=float, default=8.0, help="each load's length")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-up", type=float, default=10.0,
                        help="seconds of untimed load on each server first")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds to wait before the loads (time to attach a profiler)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="start-up limit")
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",")]
    args.mixes = args.mixes.split(",")
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))


if __name__ == "__main__":
    main()
