"""What the status page costs: `/`, `/stats` and `/metrics` with few and many sessions.

    python bench/status_page.py [--sessions 2000] [--names 500] [--rounds 30]

One built-in regtest node (small chain) with `--mempool` transactions, and our
server with METRICS_PORT set.  The three paths are fetched in turn (/ then
/stats then /metrics, repeated `--rounds` times) first with one session open,
then again after `--sessions` more have identified themselves under
`--names` distinct client names; it prints the median time per answer and
its size.  The page and /stats should stay the same size whatever the number
of clients (their lists are cut), and cost about one pass over the sessions.
"""

import argparse
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from clients import ElectrumClient, NodeRPC
from processes import READY, free_port, start_node, start_server, stop, wait_for


def timed_get(url):
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as reply:
        body = reply.read()
    return time.perf_counter() - started, len(body)


def measure(base, rounds):
    """{path: (median seconds, last size)}, the paths fetched in turn each round."""
    times = {path: [] for path in ("/", "/stats", "/metrics")}
    sizes = {}
    for _ in range(rounds):
        for path in times:
            secs, sizes[path] = timed_get(base + path)
            times[path].append(secs)
    return {path: (statistics.median(t), sizes[path]) for path, t in times.items()}


def open_sessions(port, count, names):
    """`count` raw sessions, each identified as one of `names` client names."""
    socks = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(b'{"jsonrpc":"2.0","id":0,"method":"server.version","params":'
                     b'["client-%d/1.0","1.4"]}\n' % (n % names))
        socks.append(sock)
    for sock in socks:          # each has its answer
        sock.recv(4096)
    return socks


def report(label, figures):
    print(f"{label}:")
    for path, (secs, size) in figures.items():
        print(f"  {path:9s} median {secs * 1000:7.2f} ms  {size:8,d} bytes")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--names", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--mempool", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp:
        work = Path(tmp)
        node = server = None
        socks = []
        try:
            node, node_port = start_node(work, "small", 600)
            NodeRPC(node_port).call("regtest_churn", args.mempool, 7)
            tcp, metrics = free_port(), free_port()
            server, log = start_server(work, node_port, SERVICES=f"tcp://127.0.0.1:{tcp}",
                                       METRICS_PORT=str(metrics),
                                       MAX_SESSIONS=str(args.sessions + 100),
                                       DAEMON_POLL_INTERVAL_MEMPOOL="1000")
            wait_for(log, READY["ours"], server, 600)
            time.sleep(3)                           # the mempool refreshed
            base = f"http://127.0.0.1:{metrics}"
            first = ElectrumClient(tcp, name="bench")
            report("1 session", measure(base, args.rounds))
            socks = open_sessions(tcp, args.sessions, args.names)
            report(f"{args.sessions + 1:,d} sessions, {args.names + 1:,d} client names",
                   measure(base, args.rounds))
            first.sock.close()
        finally:
            for sock in socks:
                sock.close()
            stop(server, node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
