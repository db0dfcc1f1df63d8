"""get_history latency for the busiest scripts, seen from one quiet connection.

    python bench/history_probe.py --port 50001 --scripts FILE.json --seconds 10

Runs beside a query load (compare.py starts it with each one).  The load
client is a single Python process that parses every reply; for replies of
several megabytes its own parsing and the queueing behind its other
connections end up in the latencies it measures.  This probe is a separate
process with one blocking connection that asks for one script's history at a
time and stops the clock when the reply's last byte has arrived, so what it
measures is the server's latency under that load.  A reply counts as wrong
unless it is a result with as many entries as the script has transactions.

With `--rate`, requests start at that pace at most (a request starts when
the last reply is in and its turn has come), so a server that answers the
busy histories faster is not handed more of them than another: without it, a
fast server spends more of its CPU on the probe and less on the load beside
it, which skews a comparison of the load's requests a second.

FILE.json maps scripthash -> number of transactions.  Prints one JSON object:
requests, req_s, p50, p90, p99, max (ms) and mismatches.
"""

import argparse
import json
import socket
import time

from load import percentile


def probe(port, scripts, seconds, rate=None):
    latencies, wrong = [], 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = sock.makefile("rb", buffering=1 << 20)

        def call(method, params):
            sock.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                     "params": params}).encode() + b"\n")
            return reader.readline()

        call("server.version", ["history-probe", "1.4"])
        started = time.monotonic()
        due = started
        while time.monotonic() - started < seconds:
            for scripthash, count in scripts.items():
                if rate:
                    due += 1 / rate
                    time.sleep(max(0.0, due - time.monotonic()))
                began = time.perf_counter()
                line = call("blockchain.scripthash.get_history", [scripthash])
                latencies.append(time.perf_counter() - began)
                if b'"result"' not in line[:64] or line.count(b'"tx_hash"') != count:
                    wrong += 1
        elapsed = time.monotonic() - started
    latencies.sort()
    return {"requests": len(latencies), "req_s": len(latencies) / elapsed,
            **{name: 1000 * percentile(latencies, p) for name, p in
               (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
            "mismatches": wrong}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scripts", required=True, help="JSON: scripthash -> tx count")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="most requests a second (default: no pause)")
    args = parser.parse_args()
    with open(args.scripts) as f:
        scripts = json.load(f)
    print(json.dumps(probe(args.port, scripts, args.seconds, args.rate)))


if __name__ == "__main__":
    main()
