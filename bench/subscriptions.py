"""Subscriptions at scale: memory per subscription and notification latency, beside ElectrumX.

    python bench/subscriptions.py [--subs 1000000] [--sessions 1000] [--server ours|electrumx|both]

For each server, on one built-in regtest node (small chain): `--sessions`
connections subscribe to headers and together to `--subs` script hashes.
Most are unused scripts (as a wallet's gap addresses are); the outputs of
`--real-txs` mempool transactions are among them, so the next block changes
their status.  It reports the subscription rate, the server's resident
memory per subscription (RSS growth over the subscriptions, sessions
included), and the time from asking the node to mine until each header and
scripthash notification arrives (the node is polled every `--poll-ms`, so
that interval is part of the latency, for both servers alike).
"""

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, endpoints, reactor, task, threads

from load import WalletClient, percentile, server_usage
from processes import READY, ROOT, free_port, start, start_node, stop, wait_for
from steady_state import NodeRPC

sys.path.insert(0, str(ROOT))

from electrumx.chain.hashes import scripthash_from_script  # noqa: E402
from electrumx.chain.tx import Tx  # noqa: E402


def filler_scripthashes(session, count):
    return [hashlib.sha256(b"%d:%d" % (session, n)).hexdigest() for n in range(count)]


def real_scripthashes(node, count):
    """Script hashes paid by `count` new mempool transactions (mined by the next block)."""
    txids = node.call("regtest_churn", count, 7)
    raws = node.batch("getrawtransaction", [[t, 0] for t in txids])
    return sorted({scripthash_from_script(o.script) for raw in raws
                   for o in Tx.from_bytes(bytes.fromhex(raw)).outputs})


class Notifications:
    """Arrival times of notifications, by kind."""

    def __init__(self):
        self.headers = []
        self.scripts = {}

    def observer(self):
        def seen(method, params):
            now = time.perf_counter()
            if method == "blockchain.headers.subscribe":
                self.headers.append(now)
            elif method == "blockchain.scripthash.subscribe":
                self.scripts.setdefault(params[0], now)
        return seen


async def connect_sessions(port, count, notes):
    sessions = []
    for n in range(count):
        client = WalletClient(notes.observer())
        await endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
        await client.call("server.version", [f"subs/{n}", "1.4"])
        await client.call("blockchain.headers.subscribe", [])
        sessions.append(client)
    return sessions


async def subscribe_all(sessions, plan, window=2000):
    """Each session subscribes to its list, `window` requests in flight at a time."""
    errors = 0

    async def one(client, scripthashes):
        nonlocal errors
        for start_at in range(0, len(scripthashes), window):
            replies = await defer.gatherResults(
                [client.call("blockchain.scripthash.subscribe", [sh])
                 for sh in scripthashes[start_at:start_at + window]])
            errors += sum(1 for r in replies if r.get("error"))

    for first in range(0, len(sessions), 50):
        await defer.gatherResults([defer.ensureDeferred(one(sessions[n], plan[n]))
                                   for n in range(first, min(first + 50, len(sessions)))])
    return errors


async def measure(kind, args, work, node_port):
    node = NodeRPC(node_port)
    tcp = free_port()
    per_session = args.subs // args.sessions
    settings = dict(SERVICES=f"tcp://127.0.0.1:{tcp}", COST_SOFT_LIMIT="0",
                    COST_HARD_LIMIT="0", MAX_SESSIONS="5000",
                    DAEMON_POLL_INTERVAL_BLOCKS=str(args.poll_ms),
                    DAEMON_POLL_INTERVAL_MEMPOOL=str(args.poll_ms))
    if kind == "ours":      # ElectrumX 2.0 has no subscription limits (it refuses these)
        settings.update(MAX_SUBS=str(args.subs * 2), MAX_SESSION_SUBS=str(per_session * 2),
                        MAX_GROUP_SUBS=str(args.subs * 2))
    server, log = start(kind, work, node_port, **settings)
    try:
        await threads.deferToThread(wait_for, log, READY[kind], server, args.timeout)
        real = await threads.deferToThread(real_scripthashes, node, args.real_txs)
        await task.deferLater(reactor, 3 * args.poll_ms / 1000, lambda: None)  # mempool seen
        rss_before = server_usage(server.pid)[1]
        notes = Notifications()
        sessions = await connect_sessions(tcp, args.sessions, notes)
        plan = [filler_scripthashes(n, per_session) for n in range(args.sessions)]
        for n, scripthash in enumerate(real):          # spread over the sessions
            plan[n % args.sessions][n // args.sessions] = scripthash
        began = time.perf_counter()
        errors = await subscribe_all(sessions, plan)
        took = time.perf_counter() - began
        await task.deferLater(reactor, 2, lambda: None)
        rss_after = server_usage(server.pid)[1]
        total = per_session * args.sessions
        notes.headers.clear()
        asked = time.perf_counter()
        await threads.deferToThread(node.call, "regtest_mine", 1)
        deadline = asked + args.timeout
        while (len(notes.headers) < args.sessions or len(notes.scripts) < len(real)) \
                and time.perf_counter() < deadline:
            await task.deferLater(reactor, 0.05, lambda: None)
        header_ms = sorted(1000 * (t - asked) for t in notes.headers)
        script_ms = sorted(1000 * (t - asked) for t in notes.scripts.values())
        figures = {
            "subscriptions": total, "subscribe_errors": errors,
            "subscribe_per_sec": total / took,
            "rss_growth_mb": rss_after - rss_before,
            "bytes_per_subscription": (rss_after - rss_before) * 1048576 / total,
            "header_notifications": len(header_ms), "script_notifications": len(script_ms),
            "header_p50_ms": percentile(header_ms, 0.5), "header_max_ms": max(header_ms or [0]),
            "script_p50_ms": percentile(script_ms, 0.5), "script_max_ms": max(script_ms or [0]),
        }
        print(f"{kind}: {total:,d} subscriptions over {args.sessions:,d} sessions in {took:.1f}s "
              f"({figures['subscribe_per_sec']:,.0f}/s, {errors} refused); RSS grew "
              f"{figures['rss_growth_mb']:.0f} MB = {figures['bytes_per_subscription']:.0f} "
              f"bytes per subscription; after a block: {len(header_ms)}/{args.sessions} header "
              f"notifications p50 {figures['header_p50_ms']:.0f} ms max "
              f"{figures['header_max_ms']:.0f} ms, {len(script_ms)}/{len(real)} scripthash "
              f"notifications p50 {figures['script_p50_ms']:.0f} ms max "
              f"{figures['script_max_ms']:.0f} ms")
        for client in sessions:
            client.transport.loseConnection()
        return figures
    finally:
        stop(server)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--subs", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--real-txs", type=int, default=200)
    parser.add_argument("--poll-ms", type=int, default=1000)
    parser.add_argument("--server", choices=("ours", "electrumx", "both"), default="ours")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    kinds = ("ours", "electrumx") if args.server == "both" else (args.server,)
    work = Path(tempfile.mkdtemp(prefix="subscriptions-"))
    node_proc, node_port = start_node(work, args.size, args.timeout)
    results = {}

    async def run_all():
        try:
            for kind in kinds:
                results[kind] = await measure(kind, args, work, node_port)
        finally:
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run_all()))
    try:
        reactor.run()
    finally:
        stop(node_proc)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if len(results) == 2:
        ours, theirs = results["ours"], results["electrumx"]
        print("| subscriptions | ours | ElectrumX | ratio |\n|---|---:|---:|---:|")
        for key in ("subscribe_per_sec", "bytes_per_subscription", "header_p50_ms",
                    "header_max_ms", "script_p50_ms", "script_max_ms"):
            ratio = ours[key] / theirs[key] if theirs[key] else float("nan")
            print(f"| {key} | {ours[key]:,.0f} | {theirs[key]:,.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
