"""One session's fast path, and one hostile batch, against `twistd -n electrumx`.

    python bench/session_limits.py [--requests 20000] [--batch 15000]

Starts the built-in regtest node (the tiny chain, then 2,100 more blocks mined,
so that `blockchain.block.headers [0, 2016]` returns a full chunk) and our
server as separate processes on loopback, with the default cost limits and
MAX_SEND, then measures:

pipelined
    `--requests` `server.ping` requests, then as many `blockchain.block.header`
    requests, each written all at once over one TCP connection: seconds from
    the first byte sent to the last reply read, and requests per second.
batch
    one line holding a batch of `--batch` `blockchain.block.headers [0, COUNT]`
    items (about 1 MB; COUNT is `--count`, 2016 by default), against a server
    with the default cost limits.  The server's RSS before and its peak
    (VmHWM) after, what the batch's client got back, and the `server.ping`
    latency of a probe connection that pings every 20 ms while the batch runs.
    The server is killed if its RSS passes `--rss-limit-mb`.

The pipelined requests run against a server without cost limits (as
bench/load.py's), so that they measure the request path and not the throttle.
"""

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from processes import ROOT, free_port, start_node, start_server, stop, wait_for

sys.path.insert(0, str(ROOT))

MINED = 2_100
"""Blocks mined on top of the tiny chain: a full 2,016-header chunk needs as many."""
PROBE_EVERY = 0.02
WATCH_EVERY = 0.05
ANSWER_SECS = 600.0
AFTER_ANSWER_SECS = 2.0


def rpc(port, method, *params):
    """One JSON-RPC call to the regtest node (blocking)."""
    import base64
    import http.client
    auth = base64.b64encode(b"regtest:regtest").decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", "/", orjson.dumps({"id": 1, "method": method, "params": params}),
                 {"Authorization": "Basic " + auth})
    reply = orjson.loads(conn.getresponse().read())
    conn.close()
    return reply["result"]


def status_kb(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Connection:
    """A blocking newline-framed client."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buffer = b""

    def send(self, payload):
        self.sock.sendall(orjson.dumps(payload) + b"\n")

    def line(self):
        while b"\n" not in self.buffer:
            data = self.sock.recv(1 << 20)
            if not data:
                return None
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def negotiate(self):
        self.send({"id": 0, "method": "server.version", "params": ["bench", "1.4"]})
        self.line()


def pipelined(port, method, params, count):
    """Seconds to send `count` requests at once and read every reply."""
    conn = Connection(port)
    conn.negotiate()
    data = b"".join(orjson.dumps({"id": n, "method": method, "params": params}) + b"\n"
                    for n in range(count))
    start = time.perf_counter()
    sender = threading.Thread(target=conn.sock.sendall, args=(data,))
    sender.start()
    for _ in range(count):
        conn.line()
    elapsed = time.perf_counter() - start
    sender.join()
    conn.sock.close()
    return elapsed


def probe(port, stop_event, latencies):
    conn = Connection(port)
    conn.negotiate()
    n = 0
    try:
        while not stop_event.is_set():
            n += 1
            start = time.perf_counter()
            conn.send({"id": n, "method": "server.ping"})
            if conn.line() is None:
                break
            latencies.append(time.perf_counter() - start)
            time.sleep(PROBE_EVERY)
    except OSError as error:
        print(f"probe: {error}")
    conn.sock.close()


def watch_memory(server, limit_kb, stop_event):
    """Kill the server if its RSS passes `limit_kb` (the old code's batches had no bound)."""
    while not stop_event.is_set() and server.poll() is None:
        if status_kb(server.pid, "VmRSS") > limit_kb:
            print(f"server RSS over {limit_kb // 1024:,d} MB: killed")
            server.kill()
            return
        time.sleep(WATCH_EVERY)


def hostile_batch(port, server, items, count, rss_limit_mb):
    pid = server.pid
    rss_before = status_kb(pid, "VmRSS")
    latencies = []
    stop_event = threading.Event()
    prober = threading.Thread(target=probe, args=(port, stop_event, latencies))
    prober.start()
    watcher = threading.Thread(target=watch_memory,
                               args=(server, rss_limit_mb * 1024, stop_event))
    watcher.start()
    time.sleep(0.5)
    conn = Connection(port)
    conn.negotiate()
    batch = [{"id": n, "method": "blockchain.block.headers", "params": [0, count]}
             for n in range(items)]
    line = orjson.dumps(batch) + b"\n"
    start = time.perf_counter()
    conn.sock.sendall(line)
    received, replies = 0, []
    conn.sock.settimeout(ANSWER_SECS)
    reply = conn.line()
    elapsed = time.perf_counter() - start
    conn.sock.settimeout(AFTER_ANSWER_SECS)        # anything more, or a hang-up?
    try:
        while reply is not None:
            received += len(reply) + 1
            replies.append(reply[:200])
            reply = conn.line()
        replies.append(b"(the server closed the connection)")
    except TimeoutError:
        replies.append(b"(the connection stayed open)")
    time.sleep(1.0)
    peak = status_kb(pid, "VmHWM") if server.poll() is None else 0
    stop_event.set()
    prober.join()
    watcher.join()
    print(f"batch: {items:,d} items, {len(line):,d} bytes; first answer after {elapsed:.2f}s; "
          f"{received:,d} bytes received in {len(replies) - 1} message(s):")
    shown = replies if len(replies) <= 4 else replies[:2] + [b"..."] + replies[-2:]
    for reply in shown:
        print(f"  {reply.decode(errors='replace')}")
    print(f"server RSS before {rss_before / 1024:.0f} MB, peak (VmHWM) {peak / 1024:.0f} MB")
    print(f"probe server.ping while it ran: {len(latencies)} pings, "
          f"p50 {1000 * statistics.median(latencies):.1f} ms, "
          f"max {1000 * max(latencies, default=0):.1f} ms")


def serve(work, node_port, height, timeout, **settings):
    """Our server, caught up and listening: (process, port)."""
    port = free_port()
    server, log = start_server(work, node_port, SERVICES=f"tcp://127.0.0.1:{port}",
                               DAEMON_POLL_INTERVAL_BLOCKS="100", **settings)
    wait_for(log, f"caught up to height {height}", server, timeout)
    wait_for(log, "serving tcp on", server, timeout)
    return server, port


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=15_000)
    parser.add_argument("--count", type=int, default=2016, help="headers asked per item")
    parser.add_argument("--rss-limit-mb", type=int, default=3000)
    parser.add_argument("--only", choices=("pipelined", "batch"), help="one measure only")
    parser.add_argument("--timeout", type=float, default=600.0, help="start-up limit")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="session-limits-"))
    node, node_port = start_node(work, "tiny", args.timeout)
    server = None
    try:
        from electrumx.chain.script import p2pkh_script
        from electrumx.coins import BitcoinRegtest
        address = BitcoinRegtest.script_to_address(p2pkh_script(bytes(20)))
        rpc(node_port, "generatetoaddress", MINED, address)
        height = rpc(node_port, "getblockcount")
        print(f"chain height {height:,d}")
        if args.only != "batch":
            server, port = serve(work, node_port, height, args.timeout, COST_SOFT_LIMIT="0",
                                 COST_HARD_LIMIT="0")
            for method, params in (("server.ping", []), ("blockchain.block.header", [100])):
                elapsed = pipelined(port, method, params, args.requests)
                print(f"pipelined {args.requests:,d} {method}: {elapsed:.3f}s, "
                      f"{args.requests / elapsed:,.0f} requests/s")
            stop(server)
        if args.only != "pipelined":
            server, port = serve(work, node_port, height, args.timeout)
            hostile_batch(port, server, args.batch, args.count, args.rss_limit_mb)
    finally:
        stop(server, node)


if __name__ == "__main__":
    main()
