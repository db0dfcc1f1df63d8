"""Our server, ElectrumX 2.0 (and Fulcrum) side by side on one regtest chain: sync, query,
notifications.

    bash bench/setup_electrumx.sh          # once: ElectrumX in bench/.electrumx-venv
    python bench/compare.py --size small [--seconds 10] [--connections 16,100] [--mix full]
    FULCRUM_BIN=bench/.fulcrum/Fulcrum python bench/compare.py ...   # Fulcrum too

One built-in regtest node (a separate process) serves the chain.  Each
server in turn syncs it from an empty database (wall and CPU seconds, tx/s,
peak RSS, database size), then takes the query load of bench/load.py at each
connection count (req/s and p50/p90/p99/max latency per method, every answer
checked against the generator's; --mix picks load.py's query mix).  Then all
run together while the node mines blocks and accepts transactions, and each
client times the header and scripthash notifications.  All get the same
CACHE_MB, poll intervals and cost limits.  ElectrumX runs with its TCP
padding delay off (bench/electrumx_launcher.py).  With a Fulcrum binary
(--fulcrum-bin or $FULCRUM_BIN; bench/setup_fulcrum.sh builds one) Fulcrum
runs third, the same settings translated to its config file
(bench/fulcrum_launcher.py).  Results go to stdout, and as JSON and Markdown
to --out.
"""

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from twisted.internet import defer, task, threads

from load import (MIXES, ChainFacts, Load, WalletClient, Workload, generated_chain,
                  percentile, server_usage)
from fulcrum_launcher import SETTINGS_NOTE as FULCRUM_NOTE, fulcrum_binary
from processes import (CAUGHT_UP_LINES, DB_NAMES, READY, ROOT, dir_size, free_port, start,
                       start_node, stop, wait_for)

sys.path.insert(0, str(ROOT))

KINDS = ("ours", "electrumx")
"""The servers compared, ours first (the ratios are ours over each other one)."""
NAMES = {"ours": "txelectrumx", "electrumx": "ElectrumX 2.0.0", "fulcrum": "Fulcrum"}
SHORT = {"ours": "ours", "electrumx": "EX", "fulcrum": "Fulcrum"}
PADDING_NOTE = ("ElectrumX ran with its TCP padding delay disabled "
                "(PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = 0).")
MINER = bytes([0x42]) * 20
TARGET = bytes([0x43]) * 20
FUNDING_TXS = 50
PAYMENT = 1_000
FEE = 500


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return f"{os.cpu_count()} cores, {cpu}, {mem:,d} MB RAM, Python {platform.python_version()}"


def wait_for_all(log, texts, proc, timeout):
    for text in texts:
        wait_for(log, text, proc, timeout)


def sync(kind, work, node_port, port, settings, timeout):
    """Start `kind` on an empty database and time it to caught-up: (process, log, numbers)."""
    began = time.monotonic()
    proc, log = start(kind, work, node_port, SERVICES=f"tcp://127.0.0.1:{port}", **settings)
    peak = cpu = 0.0
    deadline = began + timeout
    signals = (CAUGHT_UP_LINES[kind], READY[kind])
    while not all(signal in log.read_text() for signal in signals):
        if proc.poll() is not None or time.monotonic() > deadline:
            wait_for_all(log, signals, proc, 0)
        cpu, _rss, peak = server_usage(proc.pid)
        time.sleep(0.05)
    wall = time.monotonic() - began
    cpu, _rss, peak = server_usage(proc.pid)
    return proc, log, {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak}


async def query(reactor, port, facts, connections, seconds, pid, seed, work, mix="full",
                probe_rate=None, client_procs=1):
    workload = Workload(facts, MIXES[mix], random.Random(seed))
    load = Load(reactor, port, workload, connections, seconds, 10**9, procs=client_procs)
    probe_label, probe = start_history_probe(port, facts, seconds, work, probe_rate)
    cpu_before = server_usage(pid)[0]
    await load.run()
    cpu = server_usage(pid)[0] - cpu_before
    methods = load.summary()
    out, _ = await threads.deferToThread(probe.communicate)
    methods[probe_label] = json.loads(out)
    return {"methods": methods, "errors": load.errors, "server_cpu_s": cpu,
            "server_version": load.server_version,
            "fields": {label: sorted(keys) for label, keys in load.fields.items()},
            "client_cpu_s": load.client_cpu_s, "client_procs": load.procs,
            "seconds": load.stopped - load.started}


def start_history_probe(port, facts, seconds, work, rate=None):
    """bench/history_probe.py for `seconds` on the 10k+ transaction scripts (or, on
    chains without any, the five longest histories): (its row's label, process)."""
    history = {sh: len(facts.expected[sh]["history"]) for sh in facts.heavy or facts.used}
    if facts.heavy:
        label = "get_history (10k+ txs, probe)"
    else:
        label = "get_history (busiest, probe)"
        history = dict(sorted(history.items(), key=lambda item: -item[1])[:5])
    scripts = work / "probe-scripts.json"
    scripts.write_text(json.dumps(history))
    probe = Path(__file__).with_name("history_probe.py")
    args = [sys.executable, str(probe), "--port", str(port), "--scripts", str(scripts),
            "--seconds", str(seconds)] + (["--rate", str(rate)] if rate else [])
    return label, subprocess.Popen(args, stdout=subprocess.PIPE)


class NodeControl:
    """JSON-RPC to the node, blocking calls run in a thread so notifications keep coming."""

    def __init__(self, port):
        import base64
        self.url = f"http://127.0.0.1:{port}/"
        self.auth = "Basic " + base64.b64encode(b"regtest:regtest").decode()

    def _call(self, method, *params, timeout=60):
        import urllib.request
        body = json.dumps({"id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, body, {"Authorization": self.auth})
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            answer = json.loads(reply.read())
        if answer.get("error"):
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def __call__(self, method, *params, timeout=60):
        return threads.deferToThread(self._call, method, *params, timeout=timeout)

    async def warm_up(self, txid, timeout):
        """Have the node build its txid index and UTXO view before anything is timed:
        it builds them at the first request needing them, which would otherwise
        stall whichever server was being measured (over a minute on the huge
        chain).  A lookup of `txid`, then testmempoolaccept of a transaction
        spending an output that does not exist."""
        from electrumx.chain.tx import Tx, TxInput, TxOutput
        await self("getrawtransaction", txid, timeout=timeout)
        bogus = Tx(2, [TxInput(bytes(32), 0, b"", 0)], [TxOutput(1, b"\x51")], 0)
        await self("testmempoolaccept", [bogus.serialize().hex()], timeout=timeout)

    async def fund(self, address, timeout):
        """An untimed first block paying `address` enough for every round: (its
        coinbase's txid, the coinbase's value, the block's height).  The coinbase
        carries the fees of transactions mined with it, as late regtest blocks
        have no subsidy left (it halves every 150 blocks)."""
        [block_hash] = await self("regtest_mine", 1, FUNDING_TXS, address, timeout=timeout)
        block = await self("getblock", block_hash, 2)
        coinbase = block["tx"][0]
        return (bytes.fromhex(coinbase["txid"])[::-1], round(coinbase["vout"][0]["value"] * 1e8),
                block["height"])


class Watcher:
    """One subscribed session per server, timing notifications against node events."""

    def __init__(self, kind):
        self.kind = kind
        self.client = WalletClient(self.notified)
        self.waiting = {}            # (method, scripthash or None) -> Deferred of the time

    def notified(self, method, params):
        now = time.perf_counter()
        key = (method, params[0] if method == "blockchain.scripthash.subscribe" else None)
        d = self.waiting.pop(key, None)
        if d is not None:
            d.callback(now)

    def expect(self, method, scripthash=None):
        d = self.waiting[(method, scripthash)] = defer.Deferred()
        return d


async def notifications(reactor, ports, node_port, rounds, timeout, poll_ms, seed):
    """p50/max latency from node event to notification, per server and kind of event.

    Each round mines a block whose coinbase pays a watched script (and which
    confirms the last round's transaction), then sends a transaction from that
    script to a second watched script, with change back to the first.  Time
    runs from just before the request to the node, so a few milliseconds of it
    are the node's own.
    """
    from electrumx.chain.hashes import scripthash_from_script
    from electrumx.chain.script import p2pkh_script
    from electrumx.chain.tx import Tx, TxInput, TxOutput
    from electrumx.coins import BitcoinRegtest
    rpc = NodeControl(node_port)
    miner, target = p2pkh_script(MINER), p2pkh_script(TARGET)
    miner_sh, target_sh = scripthash_from_script(miner), scripthash_from_script(target)
    address = BitcoinRegtest.script_to_address(miner)
    funding_txid, funds, funded_height = await rpc.fund(address, timeout)
    if funds < rounds * (PAYMENT + FEE):
        raise SystemExit(f"the funding block paid {funds} sats, too little for {rounds} rounds")
    funding = (funding_txid, 0)
    watchers = {}
    for kind, port in ports.items():
        watcher = watchers[kind] = Watcher(kind)
        await connect_watcher(reactor, port, watcher)
        await watcher.client.call("server.version", ["compare", "1.4"])
        # Not subscribed before the server has the funding block: its notification
        # would be taken for the first round's.
        deadline = time.monotonic() + timeout
        while (await watcher.client.call("blockchain.headers.subscribe", [])
               )["result"]["height"] < funded_height:
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind} did not reach height {funded_height}")
            await task.deferLater(reactor, 0.1, lambda: None)
        for method, params in (("blockchain.headers.subscribe", []),
                               ("blockchain.scripthash.subscribe", [miner_sh]),
                               ("blockchain.scripthash.subscribe", [target_sh])):
            await watcher.client.call(method, params)
    latencies = defaultdict(list)
    rng = random.Random(seed)

    async def event(expectations, act):
        """Time from just before `act` asks the node to each expected notification."""
        # A random pause first, so events fall at random points of the servers' polling.
        # Expectations are registered after it: a late or repeated notification of the
        # last event (Fulcrum sends some) that arrives during the pause is not taken
        # for this event's, which gave negative latencies.
        await task.deferLater(reactor, rng.uniform(0, poll_ms / 1000), lambda: None)
        waits = {(kind, label): w.expect(method, sh) for kind, w in watchers.items()
                 for label, method, sh in expectations}
        at = time.perf_counter()
        result = await act()
        for (kind, label), d in waits.items():
            d.addTimeout(timeout, reactor)
            try:
                latencies[(kind, label)].append(1000 * (await d - at))
            except defer.TimeoutError:
                latencies[(kind, label)].append(float("inf"))
        return result

    mined_tx = False
    for _ in range(rounds):
        expectations = [("block: header", "blockchain.headers.subscribe", None),
                        ("block: scripthash paid by the coinbase",
                         "blockchain.scripthash.subscribe", miner_sh)]
        if mined_tx:
            expectations.append(("block: scripthash of a mined mempool tx",
                                 "blockchain.scripthash.subscribe", target_sh))
        await event(expectations, lambda: rpc("regtest_mine", 1, 0, address))
        # Pay the target from the miner's script, the change back to it for the next round.
        funds -= PAYMENT + FEE
        tx = Tx(2, [TxInput(funding[0], funding[1], b"", 0)],
                [TxOutput(PAYMENT, target), TxOutput(funds, miner)], 0)
        funding = (tx.txid, 1)
        await event([("mempool tx: scripthash paid", "blockchain.scripthash.subscribe",
                      target_sh),
                     ("mempool tx: scripthash spent from", "blockchain.scripthash.subscribe",
                      miner_sh)],
                    lambda: rpc("sendrawtransaction", tx.serialize().hex()))
        mined_tx = True
    for watcher in watchers.values():
        watcher.client.transport.loseConnection()
    out = {kind: {} for kind in ports}
    for (kind, label), values in latencies.items():
        values = sorted(values)
        out[kind][label] = {"p50_ms": percentile(values, 0.5), "max_ms": values[-1]}
    return out


async def connect_watcher(reactor, port, watcher):
    from twisted.internet import endpoints
    await endpoints.connectProtocol(
        endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port), watcher.client)


async def run(reactor, args):
    kinds = KINDS
    if args.fulcrum_bin:
        os.environ["FULCRUM_BIN"] = str(fulcrum_binary(args.fulcrum_bin))
        kinds += ("fulcrum",)
    work = Path(args.work or tempfile.mkdtemp(prefix=f"compare-{args.size}-"))
    work.mkdir(parents=True, exist_ok=True)
    poll = str(args.poll_ms)
    settings = dict(CACHE_MB=str(args.cache_mb), DAEMON_POLL_INTERVAL_BLOCKS=poll,
                    DAEMON_POLL_INTERVAL_MEMPOOL=poll, MAX_SESSIONS="1000",
                    COST_SOFT_LIMIT="1000000000", COST_HARD_LIMIT="2000000000",
                    REQUEST_TIMEOUT="60", LOG_LEVEL="info")
    print(f"work directory {work}; {PADDING_NOTE}", flush=True)
    node, node_port = start_node(work, args.size, args.timeout)
    procs = {}
    try:
        facts = ChainFacts(generated_chain(args.size))
        # The node indexes its transactions at the first request that needs them
        # (over a minute on the huge chain): not during the first server's load.
        await NodeControl(node_port).warm_up(facts.txs[0][0], args.timeout)
        results = {"size": args.size, "mix": args.mix, "probe_rate": args.probe_rate,
                   "blocks": facts.tip + 1,
                   "txs": facts.tx_count,
                   "heavy_scripts": len(facts.heavy), "machine": machine(),
                   "settings": settings, "padding": PADDING_NOTE,
                   "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "servers": {kind: {} for kind in kinds}}
        if "fulcrum" in kinds:
            results["padding"] += " " + FULCRUM_NOTE
        ports = {kind: free_port() for kind in kinds}
        for kind in kinds:
            print(f"{NAMES[kind]}: sync", flush=True)
            proc, log, numbers = sync(kind, work, node_port, ports[kind], settings,
                                      args.timeout)
            numbers["tx_s"] = facts.tx_count / numbers["wall_s"]
            mine = results["servers"][kind]
            mine["sync"] = numbers
            mine["query"] = {}
            for connections in args.connections:
                print(f"{NAMES[kind]}: query load, {connections} connections", flush=True)
                mine["query"][str(connections)] = await query(
                    reactor, ports[kind], facts, connections, args.seconds, proc.pid,
                    args.seed, work, args.mix, args.probe_rate, args.client_procs)
            stop(proc)
            numbers["db_mb"] = dir_size(work / DB_NAMES[kind]) / 1e6
            print(f"{NAMES[kind]}: log {log}", flush=True)
        print("all: notifications", flush=True)
        for kind in kinds:
            procs[kind], log = start(kind, work, node_port,
                                     SERVICES=f"tcp://127.0.0.1:{ports[kind]}", **settings)
            wait_for(log, READY[kind], procs[kind], args.timeout)
        notes = await notifications(reactor, ports, node_port, args.rounds, args.timeout,
                                    args.poll_ms, args.seed)
        for kind in kinds:
            results["servers"][kind]["notifications"] = notes[kind]
    finally:
        for proc in procs.values():
            stop(proc)
        stop(node)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    write(results, Path(args.out))


def rewrite(path):
    """Print and write the tables of an earlier run's JSON again."""
    write(json.loads(Path(path).read_text()), Path(path).parent)


SYNC = (("wall_s", "wall s", ".1f"), ("cpu_s", "CPU s", ".1f"), ("tx_s", "tx/s", ",.0f"),
        ("peak_rss_mb", "peak RSS MB", ",.0f"), ("db_mb", "DB size MB", ",.1f"))
LATENCIES = ("p50", "p90", "p99", "max")


def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def tables(results):
    """The result tables, each as (title, header cells, rows of cells): a column per
    server (ours first) and the ratios ours/each other server."""
    kinds = list(results["servers"])
    servers = [results["servers"][k] for k in kinds]
    ours = servers[0]
    short = [SHORT[k] for k in kinds]
    per_ratio = [f"ours/{name}" for name in short[1:]]
    sync = [[name] + [f"{s['sync'][k]:{fmt}}" for s in servers]
            + [ratio(ours["sync"][k], s["sync"][k]) for s in servers[1:]]
            for k, name, fmt in SYNC]
    out = [("sync, fresh database to caught up", ["measure"] + short + per_ratio, sync)]
    for connections, q in ours["query"].items():
        runs = [s["query"][connections] for s in servers]
        body = []
        for label in q["methods"]:
            rows = [run["methods"].get(label) for run in runs]
            if None in rows:
                continue
            cells = [label] + [f"{row['req_s']:,.0f}" for row in rows]
            cells += [ratio(rows[0]["req_s"], row["req_s"]) for row in rows[1:]]
            for p in LATENCIES:
                cells += [f"{row[p]:.1f}" for row in rows]
            cells += [f"{row['mismatches']:,d}" for row in rows]
            body.append(cells)
        header = ["method"] + [f"req/s {name}" for name in short] + per_ratio
        for p in LATENCIES:
            header += [f"{p} ms {name}" for name in short]
        header += [f"wrong {name}" for name in short]
        cpu = {k: ", ".join(f"{name} {run[k] / q['seconds']:.0%}"
                            for name, run in zip(short, runs))
               for k in ("server_cpu_s", "client_cpu_s")}
        out.append((f"query, {connections} connections, {q['seconds']:.0f} s each "
                    f"(of one core, server CPU: {cpu['server_cpu_s']}; "
                    f"load client CPU: {cpu['client_cpu_s']}{client_procs(q)})",
                    header, body))
    notes = [[label] + [f"{s['notifications'][label]['p50_ms']:,.0f}" for s in servers]
             + [f"{s['notifications'][label]['max_ms']:,.0f}" for s in servers]
             for label in ours.get("notifications", {})]
    out.append(("notifications, ms from the node having it to the client",
                ["event"] + [f"p50 {name}" for name in short]
                + [f"max {name}" for name in short], notes))
    return out


def client_procs(query_run):
    """How many processes the load client ran in, when more than one."""
    procs = query_run.get("client_procs", 1)
    return f", in {procs} processes" if procs > 1 else ""


def answer_notes(results):
    """Lines saying what each server answered to server.version and which result fields
    another server's answers have that ours lack (or lack that ours have): the load
    checks only the fields it knows (bench/load.py), so other fields go unchecked."""
    kinds = list(results["servers"])
    lines = []
    for kind in kinds:
        for connections, q in results["servers"][kind]["query"].items():
            if "server_version" in q:
                lines.append(f"{NAMES[kind]} answered server.version with "
                             f"{json.dumps(q['server_version'])}")
                break
    ours = results["servers"][kinds[0]]["query"]
    for kind in kinds[1:]:
        for connections, q in results["servers"][kind]["query"].items():
            for label, fields in sorted(q.get("fields", {}).items()):
                mine = set(ours.get(connections, {}).get("fields", {}).get(label, []))
                extra, missing = sorted(set(fields) - mine), sorted(mine - set(fields))
                if extra or missing:
                    lines.append(f"{NAMES[kind]} {label} ({connections} connections): "
                                 f"fields ours lacks {extra or '-'}, fields ours has "
                                 f"{missing or '-'} (unchecked by the load)")
    return lines


def write(results, out_dir):
    head = (f"size {results['size']}, mix {results.get('mix', 'full')}: "
            f"{results['blocks']:,d} blocks, {results['txs']:,d} txs, "
            f"{results['heavy_scripts']} scripts with 10k+ txs; {results['machine']}; "
            f"CACHE_MB={results['settings']['CACHE_MB']}, poll "
            f"{results['settings']['DAEMON_POLL_INTERVAL_BLOCKS']} ms; "
            f"history probe {results.get('probe_rate') or 'unpaced'} req/s at most; "
            f"{results['date']}")
    text = [head, results["padding"]]
    md = [head + "  ", results["padding"]]
    for line in answer_notes(results):
        text.append(line)
        md[-1] += "  "
        md.append(line)
    for title, header, body in tables(results):
        widths = [max(len(str(c)) for c in column) for column in zip(header, *body)]
        text += ["", title + ":"]
        text += ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                           for i, (c, w) in enumerate(zip(cells, widths)))
                 for cells in [header] + body]
        md += ["", f"**{title}**", "", "| " + " | ".join(header) + " |",
               "|---" + "|---:" * (len(header) - 1) + "|"]
        md += ["| " + " | ".join(cells) + " |" for cells in body]
    for kind in results["servers"]:
        for connections, q in results["servers"][kind]["query"].items():
            if q["errors"]:
                text.append(f"{NAMES[kind]} errors at {connections} connections: "
                            + ", ".join(f"{m}: {n}" for m, n in sorted(q["errors"].items())))
    print("\n".join(text))
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"compare-{results['size']}-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {stem}.json and {stem}.md")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="regtest chain preset")
    parser.add_argument("--probe-rate", type=float,
                        help="most requests a second of the busy-history probe beside each "
                             "load (default: as fast as answered); fixed, the servers get "
                             "the same probe load")
    parser.add_argument("--mix", choices=list(MIXES), default="full",
                        help="query mix of bench/load.py (light: for the mainnet-* sizes)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each query load's length")
    parser.add_argument("--connections", default="16,100",
                        type=lambda s: [int(n) for n in s.split(",")])
    parser.add_argument("--client-procs", type=int, default=1,
                        help="processes the load client splits its connections over "
                             "(bench/load.py --procs)")
    parser.add_argument("--cache-mb", type=int, default=1200)
    parser.add_argument("--poll-ms", type=int, default=1000,
                        help="DAEMON_POLL_INTERVAL_BLOCKS and _MEMPOOL of every server "
                             "(Fulcrum's polltime)")
    parser.add_argument("--rounds", type=int, default=5, help="notification rounds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600, help="start-up and sync limit")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--work", help="work directory (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--tables", help="only print the tables of an earlier JSON result")
    parser.add_argument("--fulcrum-bin", default=os.environ.get("FULCRUM_BIN"),
                        help="a Fulcrum executable (bench/setup_fulcrum.sh) to compare too "
                             "(default: $FULCRUM_BIN; none: ours and ElectrumX only)")
    args = parser.parse_args()
    if args.tables:
        return rewrite(args.tables)
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))


if __name__ == "__main__":
    main()
