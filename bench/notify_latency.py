"""Notification latency with the node's ZMQ notifications, against polling.

    python bench/notify_latency.py [--sessions 1000] [--subs 100000] [--tx-rounds 20]
                                   [--block-rounds 3] [--modes zmq,poll1000,poll5000]
                                   [--repeat 1]

One built-in regtest node (its own process) publishes hashblock and rawtx on
127.0.0.1.  For each mode in turn (the list run `--repeat` times, so modes
alternate), a fresh server (`twistd electrumx`, its own process and
database) is started:

  zmq        ZMQ_BLOCK_URL and ZMQ_TX_URL set, polls at their 5 s default
  pollN      no ZMQ, DAEMON_POLL_INTERVAL_BLOCKS and _MEMPOOL at N ms

`--sessions` connections subscribe to headers and together to `--subs`
script hashes (unused ones, as a wallet's gap addresses, and the scripts
the rounds pay).  Then:

tx rounds
    a transaction paying one subscribed script is sent to the node; the
    latency is from just before the sendrawtransaction request to the
    arrival of that script's notification (so it includes the RPC round
    trip).  Each round waits a random 0.1 s to 0.1 s + the poll interval
    after the last notification (itself just after a poll, without ZMQ),
    so transactions fall at every phase of a poll.
block rounds
    the node mines a block; the latency is from just before the request to
    the arrival of each session's header notification.

Blocks are heard of at once in every mode (a `waitfornewblock` long-poll
is always waiting on the node), so the block rows compare ZMQ with that
long-poll rather than with polling.  Everything runs on loopback and each
wait is bounded (`--timeout`); the client is one Python process, so at
high session counts its own work is part of the figures.
"""

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, reactor, task, threads

from clients import NodeRPC
from load import percentile, server_usage
from processes import READY, ROOT, free_port, start, start_node, stop, wait_for
from subscriptions import Notifications, connect_sessions, filler_scripthashes, subscribe_all

sys.path.insert(0, str(ROOT))

from electrumx.chain.hashes import scripthash_from_script  # noqa: E402
from electrumx.chain.tx import Tx  # noqa: E402
from electrumx.regtest import txmaker  # noqa: E402


def payment_chain(node, count, rng):
    """`count` raw transactions, each spending the one before's output, the first a large
    output of a fresh mempool transaction; and the script hash each pays."""
    txids = node.call("regtest_churn", 5, rng.randrange(1 << 30), 0.0)
    best = None
    for txid in txids:
        tx = Tx.from_bytes(bytes.fromhex(node.call("getrawtransaction", txid, 0)))
        for idx, out in enumerate(tx.outputs):
            if best is None or out.value > best[1]:
                best = (tx.txid + idx.to_bytes(4, "little"), out.value, out.script)
    raws, scripthashes = [], []
    for _ in range(count):
        tx = txmaker.payment([best], rng, outputs=1, feerate=1)
        raws.append(tx.serialize().hex())
        scripthashes.append(scripthash_from_script(tx.outputs[0].script))
        best = (tx.txid + bytes(4), tx.outputs[0].value, tx.outputs[0].script)
    return raws, scripthashes


async def pause(secs):
    await task.deferLater(reactor, secs, lambda: None)


async def measure(mode, args, work, node_port, zmq_urls, rng):
    node = NodeRPC(node_port)
    tcp = free_port()
    per_session = args.subs // args.sessions
    poll_ms = "5000" if mode == "zmq" else mode[len("poll"):]
    settings = dict(SERVICES=f"tcp://127.0.0.1:{tcp}", COST_SOFT_LIMIT="0",
                    COST_HARD_LIMIT="0", MAX_SESSIONS=str(args.sessions + 100),
                    MAX_SUBS=str(args.subs * 2), MAX_SESSION_SUBS=str(per_session * 2 + 10),
                    MAX_GROUP_SUBS=str(args.subs * 2), DAEMON_POLL_INTERVAL_BLOCKS=poll_ms,
                    DAEMON_POLL_INTERVAL_MEMPOOL=poll_ms)
    if mode == "zmq":
        settings.update(ZMQ_BLOCK_URL=zmq_urls["hashblock"], ZMQ_TX_URL=zmq_urls["rawtx"])
    work.mkdir()
    server, log = start("ours", work, node_port, **settings)
    try:
        await threads.deferToThread(wait_for, log, READY["ours"], server, args.timeout)
        raws, targets = await threads.deferToThread(payment_chain, node, args.tx_rounds, rng)
        notes = Notifications()
        sessions = await connect_sessions(tcp, args.sessions, notes)
        plan = [filler_scripthashes(n, per_session) for n in range(args.sessions)]
        for n, scripthash in enumerate(targets):
            plan[n % args.sessions][n // args.sessions % per_session] = scripthash
        errors = await subscribe_all(sessions, plan)
        await pause(2 * int(poll_ms) / 1000)     # the churned transactions' notifications
        tx_ms, missed = [], 0
        for raw, scripthash in zip(raws, targets):
            await pause(rng.uniform(0.1, 0.1 + int(poll_ms) / 1000))
            asked = time.perf_counter()
            await threads.deferToThread(node.call, "sendrawtransaction", raw)
            deadline = asked + 2 * int(poll_ms) / 1000 + 5
            while scripthash not in notes.scripts and time.perf_counter() < deadline:
                await pause(0.002)
            if scripthash in notes.scripts:
                tx_ms.append(1000 * (notes.scripts[scripthash] - asked))
            else:
                missed += 1
        block_ms = []
        for _ in range(args.block_rounds):
            await pause(rng.uniform(0.1, 0.6))
            notes.headers.clear()
            asked = time.perf_counter()
            await threads.deferToThread(node.call, "regtest_mine", 1)
            deadline = asked + 2 * int(poll_ms) / 1000 + 10
            while len(notes.headers) < args.sessions and time.perf_counter() < deadline:
                await pause(0.005)
            block_ms += [1000 * (t - asked) for t in notes.headers]
            missed += args.sessions - len(notes.headers)
        cpu, rss, _peak = server_usage(server.pid)
        for client in sessions:
            client.transport.loseConnection()
        tx_ms.sort()
        block_ms.sort()
        figures = {"mode": mode, "sessions": args.sessions,
                   "subscriptions": per_session * args.sessions, "subscribe_errors": errors,
                   "missed": missed, "tx_samples": len(tx_ms), "block_samples": len(block_ms),
                   "tx_p50_ms": percentile(tx_ms, 0.5), "tx_p99_ms": percentile(tx_ms, 0.99),
                   "tx_max_ms": max(tx_ms or [float("nan")]),
                   "block_p50_ms": percentile(block_ms, 0.5),
                   "block_p99_ms": percentile(block_ms, 0.99),
                   "server_cpu_s": cpu, "server_rss_mb": rss, "tx_ms": tx_ms}
        print(f"{mode}: {figures['subscriptions']:,d} subscriptions over {args.sessions:,d} "
              f"sessions ({errors} refused, {missed} notifications missed); tx p50 "
              f"{figures['tx_p50_ms']:.1f} ms p99 {figures['tx_p99_ms']:.1f} ms "
              f"({len(tx_ms)}); block headers p50 {figures['block_p50_ms']:.1f} ms p99 "
              f"{figures['block_p99_ms']:.1f} ms ({len(block_ms)})", flush=True)
        return figures
    finally:
        stop(server)


def summary(results):
    """Per mode, the percentiles over every run's samples pooled."""
    by_mode = {}
    for figures in results:
        pooled = by_mode.setdefault(figures["mode"], {"tx": [], "runs": 0})
        pooled["tx"] += figures["tx_ms"]
        pooled["runs"] += 1
    lines = ["| mode | runs | tx samples | tx p50 ms | tx p99 ms | block p50 ms (per run) |",
             "|---|---:|---:|---:|---:|---|"]
    for mode, pooled in by_mode.items():
        tx = sorted(pooled["tx"])
        blocks = ", ".join(f"{f['block_p50_ms']:.1f}" for f in results if f["mode"] == mode)
        lines.append(f"| {mode} | {pooled['runs']} | {len(tx)} | {percentile(tx, 0.5):.1f} "
                     f"| {percentile(tx, 0.99):.1f} | {blocks} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--subs", type=int, default=100_000)
    parser.add_argument("--tx-rounds", type=int, default=20)
    parser.add_argument("--block-rounds", type=int, default=3)
    parser.add_argument("--modes", default="zmq,poll1000,poll5000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    modes = args.modes.split(",")
    for mode in modes:
        if mode != "zmq" and not (mode.startswith("poll") and mode[4:].isdigit()):
            parser.error(f"unknown mode {mode!r}: zmq or pollN (N in ms)")
    if args.subs < args.sessions:
        parser.error("--subs must be at least --sessions")
    work = Path(tempfile.mkdtemp(prefix="notify-latency-"))
    zmq_urls = {topic: f"tcp://127.0.0.1:{free_port()}" for topic in ("hashblock", "rawtx")}
    node_proc, node_port = start_node(
        work, args.size, args.timeout,
        extra_args=[f"--zmqpub{topic}={url}" for topic, url in zmq_urls.items()])
    rng = random.Random(args.seed)
    results = []

    async def run_all():
        try:
            for run in range(args.repeat):
                for mode in modes:
                    results.append(await measure(mode, args, work / f"{mode}-{run}",
                                                 node_port, zmq_urls, rng))
        finally:
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(run_all()))
    try:
        reactor.run()
    finally:
        stop(node_proc)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if results:
        print(summary(results))


if __name__ == "__main__":
    main()
