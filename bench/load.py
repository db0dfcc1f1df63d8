"""Query load: requests/s and latency percentiles over many concurrent wallet connections.

    python bench/load.py [--size small] [--connections 100] [--seconds 20]
    python bench/load.py --port 50001 --scripthashes FILE    # an already running server

By default it starts the built-in regtest node and `twistd -n electrumx` as
separate processes on loopback, waits for the index to catch up, then opens
`--connections` sessions that each run a closed loop (one request in flight)
of a wallet-like mix: get_history, get_balance, listunspent and subscribe,
on the generator's sampled scripts and on unused scripts (as a wallet's gap
addresses are).  It stops by itself after `--seconds` of load (or
`--requests` in all) and prints requests/s, p50/p90/p99 latency, and the
server's CPU seconds and resident memory.
"""

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, endpoints, reactor
from twisted.protocols.basic import LineOnlyReceiver

from processes import ROOT, free_port, start_node, start_server, stop, wait_for

sys.path.insert(0, str(ROOT))

MIX = (("blockchain.scripthash.get_history", 30), ("blockchain.scripthash.get_balance", 30),
       ("blockchain.scripthash.listunspent", 30), ("blockchain.scripthash.subscribe", 10))
UNUSED_SHARE = 0.3
"""Share of requests about scripts with no history, like a wallet's gap addresses."""


def sampled_scripthashes(size):
    """The scripthashes the generator keeps expected answers for (the busy ones)."""
    from electrumx.regtest.cache import load_or_generate
    from electrumx.regtest.workload import WorkloadParams
    chain = load_or_generate(WorkloadParams.preset(size), None)
    return sorted(chain.expected)


def unused_scripthashes(count):
    return [hashlib.sha256(b"unused %d" % n).digest()[::-1].hex() for n in range(count)]


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


class Load:
    """Drives the connections and collects latencies; stops at a deadline or a count."""

    def __init__(self, reactor, port, used, unused, connections, seconds, max_requests, seed):
        self.reactor = reactor
        self.port = port
        self.used = used
        self.unused = unused
        self.connections = connections
        self.seconds = seconds
        self.max_requests = max_requests
        self.rng = random.Random(seed)
        methods, weights = zip(*MIX)
        self.methods = methods
        self.weights = weights
        self.latencies = []
        self.errors = {}
        self.started = None
        self.stopped = None
        self.sent = 0

    def next_request(self):
        method = self.rng.choices(self.methods, self.weights)[0]
        pool = self.unused if self.rng.random() < UNUSED_SHARE else self.used
        return method, self.rng.choice(pool)

    def more(self) -> bool:
        if self.stopped is not None:
            return False
        if self.sent >= self.max_requests or time.monotonic() - self.started >= self.seconds:
            self.stopped = time.monotonic()
            return False
        self.sent += 1
        return True

    async def run(self):
        self.started = time.monotonic()
        results = await defer.DeferredList([defer.ensureDeferred(self.client(n))
                                            for n in range(self.connections)],
                                           consumeErrors=True)
        for ok, failure in results:
            if not ok:
                message = f"connection failed: {failure.getErrorMessage()}"
                self.errors[message] = self.errors.get(message, 0) + 1
        if self.stopped is None:
            self.stopped = time.monotonic()

    async def client(self, number):
        session = WalletClient()
        await endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(self.reactor, "127.0.0.1", self.port), session)
        await session.call("server.version", [f"load/{number}", "1.4"])
        while self.more():
            method, scripthash = self.next_request()
            began = time.perf_counter()
            reply = await session.call(method, [scripthash])
            self.latencies.append(time.perf_counter() - began)
            if reply.get("error"):
                message = reply["error"].get("message", "?")
                self.errors[message] = self.errors.get(message, 0) + 1
        session.transport.loseConnection()


class WalletClient(LineOnlyReceiver):
    """Line-framed JSON-RPC: `call` returns a Deferred of the reply."""

    delimiter = b"\n"
    MAX_LENGTH = 50_000_000

    def __init__(self):
        self.waiting = {}
        self.next_id = 0

    def call(self, method, params):
        self.next_id += 1
        d = self.waiting[self.next_id] = defer.Deferred()
        self.sendLine(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                  "params": params}).encode())
        return d

    def lineReceived(self, line):
        message = json.loads(line)
        d = self.waiting.pop(message.get("id"), None)      # notifications have no id
        if d is not None:
            d.callback(message)

    def connectionLost(self, reason):
        waiting, self.waiting = self.waiting, {}
        for d in waiting.values():
            d.errback(reason)


def server_usage(pid):
    """(CPU seconds, resident MB) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576
    return cpu, rss


def report(load, server_pid, cpu_before):
    latencies = sorted(load.latencies)
    elapsed = load.stopped - load.started
    ms = [1000 * percentile(latencies, p) for p in (0.5, 0.9, 0.99)]
    print(f"{len(latencies):,d} requests over {load.connections} connections in "
          f"{elapsed:.1f}s: {len(latencies) / elapsed:,.0f} req/s; latency p50 {ms[0]:.2f} ms, "
          f"p90 {ms[1]:.2f} ms, p99 {ms[2]:.2f} ms")
    if load.errors:
        print("errors: " + ", ".join(f"{m}: {n}" for m, n in sorted(load.errors.items())))
    if server_pid:
        cpu, rss = server_usage(server_pid)
        print(f"server: {cpu - cpu_before:.1f}s CPU during the load "
              f"({100 * (cpu - cpu_before) / elapsed:.0f}% of one core), RSS {rss:.0f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="regtest chain preset")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load")
    parser.add_argument("--requests", type=int, default=1_000_000, help="most requests in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, help="load a running server on 127.0.0.1:PORT")
    parser.add_argument("--pid", type=int, help="that server's pid, for its CPU and RSS")
    parser.add_argument("--scripthashes", help="file of scripthashes (one per line) for --port")
    parser.add_argument("--timeout", type=float, default=600.0, help="start-up limit")
    args = parser.parse_args()

    if args.port:
        used = Path(args.scripthashes).read_text().split() if args.scripthashes else []
        port, server_pid, node, server = args.port, args.pid, None, None
    else:
        work = Path(tempfile.mkdtemp(prefix="load-bench-"))
        used = sampled_scripthashes(args.size)
        node, node_port = start_node(work, args.size, args.timeout)
        port = free_port()
        server, log = start_server(work, node_port, SERVICES=f"tcp://127.0.0.1:{port}",
                                   MAX_SESSIONS="1000", COST_SOFT_LIMIT="0",
                                   COST_HARD_LIMIT="0")
        wait_for(log, "serving tcp on", server, args.timeout)
        server_pid = server.pid
        print(f"server log: {log}")
    unused = unused_scripthashes(max(100, len(used)))
    used = used or unused
    load = Load(reactor, port, used, unused, args.connections, args.seconds, args.requests,
                args.seed)
    cpu_before = server_usage(server_pid)[0] if server_pid else 0.0

    async def run():
        try:
            await load.run()
        finally:
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run()))
    watchdog = reactor.callLater(args.seconds + 60, reactor.stop)
    try:
        reactor.run()
        if watchdog.active():
            watchdog.cancel()
        report(load, server_pid, cpu_before)
    finally:
        for proc in (server, node):
            if proc is not None:
                stop(proc)


if __name__ == "__main__":
    main()
