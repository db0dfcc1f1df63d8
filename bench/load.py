"""Query load: requests/s and latency percentiles over many concurrent wallet connections.

    python bench/load.py [--size small] [--connections 100] [--seconds 20] [--mix wallet]
    python bench/load.py --port 50001 --scripthashes FILE    # an already running server

By default it starts the built-in regtest node and `twistd -n electrumx` as
separate processes on loopback, waits for the index to catch up, then opens
`--connections` sessions that each run a closed loop (one request in flight)
of a query mix (MIXES): `wallet` (the default) is get_history, get_balance,
listunspent and subscribe, on the generator's sampled scripts and on unused
scripts (as a wallet's gap addresses are); `full` adds transaction.get,
get_merkle and block headers; `light` is a typical wallet's day, meant for
the mainnet-shaped chains (see LIGHT_MIX).
Every answer about the generated chain is checked against what the
generator recorded, and mismatches are counted.  It stops by itself after
`--seconds` of load (or `--requests` in all) and prints requests/s,
p50/p90/p99/max latency per method, the server's CPU seconds and
resident memory, and the client's own CPU time (`--procs N` spreads the
connections over N client processes).  bench/compare.py runs the same load
against ElectrumX.
"""

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import orjson
from twisted.internet import defer, endpoints, reactor, task
from twisted.internet.protocol import Protocol

from processes import ROOT, free_port, start_node, start_server, stop, wait_for

sys.path.insert(0, str(ROOT))

WALLET_MIX = (("blockchain.scripthash.get_history", 30),
              ("blockchain.scripthash.get_balance", 30),
              ("blockchain.scripthash.listunspent", 30),
              ("blockchain.scripthash.subscribe", 10))
FULL_MIX = (("blockchain.scripthash.get_history", 20),
            ("blockchain.scripthash.get_balance", 20),
            ("blockchain.scripthash.listunspent", 20),
            ("blockchain.scripthash.subscribe", 10),
            ("blockchain.transaction.get", 10),
            ("blockchain.transaction.get_merkle", 10),
            ("blockchain.block.header", 5),
            ("blockchain.block.headers", 5))
LIGHT_MIX = (("blockchain.scripthash.get_history", 20),
             ("blockchain.scripthash.get_balance", 20),
             ("blockchain.scripthash.listunspent", 15),
             ("blockchain.scripthash.subscribe", 15),
             ("blockchain.transaction.get", 15),
             ("blockchain.transaction.get_merkle", 10),
             ("blockchain.block.header", 3),
             ("blockchain.block.headers", 2))
"""What a typical wallet asks in a day: about its scripts, the transactions it shows,
their proofs and a few headers."""
UNUSED_SHARE = 0.3
"""Share of ordinary script requests about scripts with no history, like a wallet's
gap addresses."""
HEAVY_TXS = 10_000
HISTORY_LIMIT = 80_000
"""Scripts with more transactions are left out: ElectrumX's default MAX_SEND refuses
their history (its limit is (MAX_SEND - 100) // 99, about 81,800 entries), and so do we."""


class Mix(NamedTuple):
    """A query mix: (method, weight) pairs, and the share of script requests about the
    heavy scripts, those with heavy_txs up to HISTORY_LIMIT transactions (the rest go
    to the ordinary scripts, which have fewer, and to unused ones)."""

    methods: tuple
    heavy_share: float
    heavy_txs: int


MIXES = {"wallet": Mix(WALLET_MIX, 0.02, HEAVY_TXS),
         "full": Mix(FULL_MIX, 0.02, HEAVY_TXS),
         # The mainnet-shaped chains' hot scripts have 5,000-22,000 transactions.
         "light": Mix(LIGHT_MIX, 0.05, 5_000)}
TX_SAMPLE = 2_000


def generated_chain(size):
    from electrumx.regtest.cache import load_or_generate
    from electrumx.regtest.workload import WorkloadParams
    return load_or_generate(WorkloadParams.preset(size), None)


def unused_scripthashes(count):
    return [hashlib.sha256(b"unused %d" % n).digest()[::-1].hex() for n in range(count)]


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def status_of(history):
    """The Electrum status of a confirmed history [[txid, height]], or None."""
    if not history:
        return None
    text = "".join(f"{txid}:{height}:" for txid, height in history)
    return hashlib.sha256(text.encode()).hexdigest()


class ChainFacts:
    """What a correct server answers about a generated chain (no mempool), to check replies.

    Scripts: the generator's expected history, balance and UTXOs (`used`
    below HEAVY_TXS transactions, `heavy` from there to HISTORY_LIMIT), and
    unused scripts (empty answers).  Transactions: a sample of (txid, height)
    whose raw bytes must hash to the txid and whose merkle branch must lead
    to the block header's root.  Headers: all of them.

    The chain's blocks stay on disk (a BlockFile): only the headers, the
    transaction counts and the sampled blocks are read, so the facts of a
    chain of many gigabytes take megabytes.
    """

    def __init__(self, chain, tx_sample=TX_SAMPLE, seed=1):
        from electrumx.chain.tx import deserialize_block_txs
        self.expected = chain.expected
        blocks = chain.blocks
        self.headers = [blocks.header(height) for height in range(len(blocks))]
        self.length = {sh: len(about["history"]) for sh, about in self.expected.items()}
        self.used = self.scripts_with(0, HEAVY_TXS)
        self.heavy = self.scripts_with(HEAVY_TXS, HISTORY_LIMIT)
        self.unused = unused_scripthashes(max(100, len(self.used)))
        rng = random.Random(seed)
        heights = rng.sample(range(1, len(blocks)), min(200, len(blocks) - 1))
        txs = [(tx.txid_hex, height) for height in heights
               for tx in deserialize_block_txs(blocks[height])]
        self.txs = rng.sample(txs, min(tx_sample, len(txs)))
        self.tip = len(blocks) - 1
        self.tx_count = sum(_tx_count(blocks.read(height, 0, 89))
                            for height in range(len(blocks)))

    def scripts_with(self, low, high):
        """The expected scripthashes with low <= transactions < high, sorted."""
        return sorted(sh for sh, n in self.length.items() if low <= n < high)

    def check(self, method, params, result) -> bool:
        """Whether `result` is the right answer to the request."""
        checker = getattr(self, "_" + method.rsplit(".", 1)[1])
        return checker(params, result)

    def _about(self, scripthash):
        return self.expected.get(scripthash) or {"history": [], "balance": 0, "utxos": []}

    def _get_history(self, params, result):
        return [[h["tx_hash"], h["height"]] for h in result] == \
            self._about(params[0])["history"]

    def _get_balance(self, params, result):
        return result == {"confirmed": self._about(params[0])["balance"], "unconfirmed": 0}

    def _listunspent(self, params, result):
        return sorted([u["tx_hash"], u["tx_pos"], u["height"], u["value"]] for u in result) \
            == sorted(self._about(params[0])["utxos"])

    def _subscribe(self, params, result):
        return result == status_of(self._about(params[0])["history"])

    def _get(self, params, result):
        from electrumx.chain.tx import Tx
        return Tx.from_bytes(bytes.fromhex(result)).txid_hex == params[0]

    def _get_merkle(self, params, result):
        from electrumx.chain.block import Header
        from electrumx.chain.merkle import root_from_branch
        txid, height = params
        root = root_from_branch(bytes.fromhex(txid)[::-1], result["pos"],
                                [bytes.fromhex(h)[::-1] for h in result["merkle"]])
        return result["block_height"] == height and \
            root == Header(self.headers[height]).merkle_root

    def _header(self, params, result):
        return result == self.headers[params[0]].hex()

    def _headers(self, params, result):
        start, count = params
        return result["count"] == len(self.headers[start:start + count]) and \
            result["hex"] == b"".join(self.headers[start:start + count]).hex()


def _tx_count(raw_block):
    from electrumx.chain.tx import read_varint
    return read_varint(raw_block, 80)[0]


class Workload:
    """Picks requests: (label, method, params), the label naming heavy-script requests apart.

    With ChainFacts, the scripts are the generated chain's (ordinary and heavy as
    the mix says); without (a server on another chain), `scripthashes` and unused
    ones, and only script methods make sense.
    """

    def __init__(self, facts, mix, rng, scripthashes=()):
        self.facts = facts
        if facts is not None:
            self.used = facts.scripts_with(0, mix.heavy_txs)
            self.heavy = facts.scripts_with(mix.heavy_txs, HISTORY_LIMIT)
            self.unused = facts.unused
        else:
            self.unused = unused_scripthashes(max(100, len(scripthashes)))
            self.used = list(scripthashes) or self.unused
            self.heavy = []
        self.heavy_share = mix.heavy_share
        self.heavy_label = f"{mix.heavy_txs // 1000}k+ txs"
        self.methods, self.weights = zip(*mix.methods)
        self.rng = rng

    def next_request(self):
        rng = self.rng
        method = rng.choices(self.methods, self.weights)[0]
        short = method.rsplit(".", 1)[1]
        if method.startswith("blockchain.scripthash."):
            if self.heavy and rng.random() < self.heavy_share:
                return f"{short} ({self.heavy_label})", method, [rng.choice(self.heavy)]
            pool = self.unused if rng.random() < UNUSED_SHARE else self.used
            return short, method, [rng.choice(pool)]
        facts = self.facts
        if method == "blockchain.transaction.get":
            return short, method, [rng.choice(facts.txs)[0]]
        if method == "blockchain.transaction.get_merkle":
            return short, method, list(rng.choice(facts.txs))
        if method == "blockchain.block.header":
            return short, method, [rng.randrange(facts.tip + 1)]
        start = rng.randrange(facts.tip + 1)
        return short, method, [start, rng.choice((1, 10, 100, 2016))]


REQUEST_ID = 1
"""The id of every request of the load: one is in flight per connection, so the same
answer to the same request comes back as the same bytes (see Load.verdicts)."""


def request_line(method, params):
    return orjson.dumps({"jsonrpc": "2.0", "id": REQUEST_ID, "method": method,
                         "params": params}) + b"\n"


class Load:
    """Drives the connections and collects latencies by label; stops at a deadline or a count.

    Each connection is a LoadSession running its own closed loop.  With `procs`
    above 1 the connections and the request budget are split over that many
    forked client processes, each with its own reactor and a random stream
    drawn from the workload's, and their numbers are merged here: one Python
    process tops out at a core, and where the machine has more the client
    should not be what limits the figures.
    """

    def __init__(self, reactor, port, workload, connections, seconds, max_requests,
                 version="1.4", procs=1):
        self.reactor = reactor
        self.port = port
        self.workload = workload
        self.connections = connections
        self.seconds = seconds
        self.max_requests = max_requests
        self.version = version
        self.procs = max(1, min(procs, connections))
        self.latencies = defaultdict(list)
        self.mismatches = defaultdict(int)
        self.fields = defaultdict(set)
        """label -> the keys seen in its result objects (the checks read only some)."""
        self.server_version = None
        self.errors = {}
        self.started = None
        self.stopped = None
        self.sent = 0
        self.client_cpu_s = 0.0
        """CPU seconds of the client process(es) during the load."""
        self.verdicts = {}
        """request line -> (the reply line last checked for it, whether it was right).  An
        answer byte-identical to one already checked for the same request gets the
        same verdict without being parsed again: a 5k+ transaction history takes
        milliseconds to parse and check, and the mixes ask for the same scripts,
        transactions and headers many times.  Error replies are not kept: each is
        parsed and counted by its message."""

    def more(self) -> bool:
        if self.stopped is not None:
            return False
        if self.sent >= self.max_requests or time.monotonic() - self.started >= self.seconds:
            self.stopped = time.monotonic()
            return False
        self.sent += 1
        return True

    async def run(self):
        if self.procs > 1:
            return await self.run_forked()
        cpu_before = time.process_time()
        self.started = time.monotonic()
        sessions = [LoadSession(self, n) for n in range(self.connections)]
        endpoint = endpoints.TCP4ClientEndpoint(self.reactor, "127.0.0.1", self.port)
        results = await defer.DeferredList(
            [endpoints.connectProtocol(endpoint, s).addCallback(lambda _, s=s: s.done)
             for s in sessions], consumeErrors=True)
        for ok, failure in results:
            if not ok:
                self.error(f"connection failed: {failure.getErrorMessage()}")
        if self.stopped is None:
            self.stopped = time.monotonic()
        self.client_cpu_s = time.process_time() - cpu_before

    def error(self, message):
        self.errors[message] = self.errors.get(message, 0) + 1

    def next_request(self):
        """(label, method, params, its line)"""
        label, method, params = self.workload.next_request()
        return label, method, params, request_line(method, params)

    def answered(self, session, line, arrived):
        """A line came for `session` at `arrived`: time and check it, send the next request."""
        label, method, params, sent_line = session.in_flight
        known = self.verdicts.get(sent_line)
        if known is not None and known[0] == line:
            right = known[1]
        else:
            message = orjson.loads(line)
            if message.get("id") is None:          # a notification; the reply is still due
                return
            if label is None:                      # server.version, not timed
                self.server_version = message.get("result", message.get("error"))
                return self.continue_(session)
            if message.get("error"):
                self.error(f"{label}: {message['error'].get('message', '?')}"[:120])
                right = False
            else:
                result = message["result"]
                self.fields[label].update(result_fields(result))
                facts = self.workload.facts
                right = facts is None or facts.check(method, params, result)
                self.verdicts[sent_line] = (line, right)
        self.latencies[label].append(arrived - session.sent_at)
        if not right:
            self.mismatches[label] += 1
        self.continue_(session)

    def continue_(self, session):
        if self.more():
            session.send(self.next_request())
        else:
            session.close()

    async def run_forked(self):
        """The load split over `procs` forked processes, their numbers merged into this one.

        Forked, so that each has the chain's facts without loading them again;
        each child makes its own reactor and never returns into the parent's code.
        """
        import multiprocessing
        context = multiprocessing.get_context("fork")
        children = []
        sys.stdout.flush()
        sys.stderr.flush()
        for n in range(self.procs):
            share = Load(None, self.port, self.workload, share_of(self.connections, n, self.procs),
                         self.seconds, share_of(self.max_requests, n, self.procs), self.version)
            numbers, sender = context.Pipe(duplex=False)
            child = context.Process(target=run_share, daemon=True,
                                    args=(share, type(self.reactor),
                                          self.workload.rng.getrandbits(64), sender))
            child.start()
            sender.close()
            children.append((child, numbers))
        for child, numbers in children:
            while not numbers.poll():
                await task.deferLater(self.reactor, 0.05, lambda: None)
            try:
                self.merge(numbers.recv())
            except EOFError:
                self.error(f"client process {child.pid} ended with exit code "
                           f"{child.exitcode} and no numbers")
            child.join()

    def numbers(self):
        """What a client process measured, for the parent's merge."""
        return {"latencies": dict(self.latencies), "mismatches": dict(self.mismatches),
                "fields": dict(self.fields), "errors": self.errors,
                "server_version": self.server_version, "started": self.started,
                "stopped": self.stopped, "sent": self.sent, "client_cpu_s": self.client_cpu_s}

    def merge(self, numbers):
        for label, values in numbers["latencies"].items():
            self.latencies[label].extend(values)
        for label, count in numbers["mismatches"].items():
            self.mismatches[label] += count
        for label, keys in numbers["fields"].items():
            self.fields[label].update(keys)
        for message, count in numbers["errors"].items():
            self.errors[message] = self.errors.get(message, 0) + count
        self.server_version = self.server_version or numbers["server_version"]
        if numbers["started"] is not None:
            self.started = min(filter(None, (self.started, numbers["started"])))
            self.stopped = max(filter(None, (self.stopped, numbers["stopped"])))
        self.sent += numbers["sent"]
        self.client_cpu_s += numbers["client_cpu_s"]

    def summary(self):
        """{label: {requests, req_s, p50, p90, p99, max (ms), mismatches}}, "all" first."""
        elapsed = self.stopped - self.started
        rows = {"all": [x for values in self.latencies.values() for x in values]}
        rows.update(sorted(self.latencies.items()))
        out = {}
        for label, values in rows.items():
            values = sorted(values)
            out[label] = {"requests": len(values), "req_s": len(values) / elapsed,
                          **{name: 1000 * percentile(values, p) for name, p in
                             (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
                          "mismatches": sum(self.mismatches.values()) if label == "all"
                          else self.mismatches.get(label, 0)}
        return out


def share_of(total, n, parts):
    """Part `n` of `total` split as evenly as whole numbers go over `parts`."""
    return total // parts + (n < total % parts)


def run_share(load, reactor_class, seed, sender):
    """A forked client process: run `load` on a reactor of its own, send back its numbers."""
    import signal
    signal.set_wakeup_fd(-1)          # the parent's reactor's waker, not ours
    load.reactor = reactor = reactor_class()
    load.workload.rng = random.Random(seed)
    reactor.callWhenRunning(
        lambda: defer.ensureDeferred(load.run()).addBoth(lambda _: reactor.stop()))
    reactor.callLater(load.seconds + 60, reactor.stop)
    reactor.run(installSignalHandlers=False)
    if load.stopped is None:
        load.error("a client process's watchdog stopped it")
        load.stopped = time.monotonic()
    sender.send(load.numbers())


def result_fields(result):
    """The keys of a result object, or of the objects in a result list."""
    items = result if isinstance(result, list) else [result]
    return {key for item in items if isinstance(item, dict) for key in item}


class LineFraming(Protocol):
    """Newline-framed input: `lineReceived(line, arrived)`, with `arrived` the perf_counter
    when the read that completed the line returned, before any parsing (the
    client is one Python process; at high rates its own work would otherwise
    show in the latencies).  A long line is joined once when its end arrives
    (LineOnlyReceiver re-joins and re-splits its whole buffer on every read:
    quadratic, about 100 ms for a 7 MB history)."""

    def __init__(self):
        self._partial = []

    def dataReceived(self, data):
        self._partial.append(data)
        if b"\n" not in data:
            return
        arrived = time.perf_counter()
        *lines, rest = b"".join(self._partial).split(b"\n")
        self._partial = [rest] if rest else []
        for line in lines:
            self.lineReceived(line, arrived)

    def lineReceived(self, line, arrived):
        raise NotImplementedError


class LoadSession(LineFraming):
    """One connection of the load: server.version, then a closed loop of requests, the
    next sent from the previous one's reply (no Deferred or coroutine per
    request); Load.answered times and checks each reply.  `done` fires when the
    connection is closed."""

    def __init__(self, load, number):
        super().__init__()
        self.load = load
        self.number = number
        self.in_flight = None
        """(label, method, params, line) of the request awaiting its reply; label None
        for server.version."""
        self.sent_at = 0.0
        self.done = defer.Deferred()

    def connectionMade(self):
        params = [f"load/{self.number}", self.load.version]
        self.send((None, "server.version", params, request_line("server.version", params)))

    def send(self, request):
        """Send a request line straight to the socket, Twisted's write the fallback.

        transport.write only buffers and asks the reactor to wait for the socket
        to be writable: two epoll_ctl calls and one more reactor pass a request,
        a fifth of the client's CPU.  A request line is small and the socket's
        buffer is empty (the last request was answered), so the send takes it
        all; a short or refused send leaves the rest, or the error, to Twisted.
        """
        self.in_flight = request
        line = request[3]
        self.sent_at = time.perf_counter()
        try:
            sent = self.transport.getHandle().send(line)
        except BlockingIOError:
            sent = 0
        except OSError:
            return self.transport.write(line)
        if sent < len(line):
            self.transport.write(line[sent:])

    def lineReceived(self, line, arrived):
        if self.in_flight is not None:
            self.load.answered(self, line, arrived)

    def close(self):
        self.in_flight = None
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if self.in_flight is not None:
            self.load.error(f"connection lost: {reason.getErrorMessage()}")
        self.done.callback(None)


class WalletClient(LineFraming):
    """Line-framed JSON-RPC: `call` returns a Deferred of the reply; notifications go to
    `on_notification(method, params)`.  Replies are parsed with orjson."""

    def __init__(self, on_notification=None):
        super().__init__()
        self.waiting = {}
        self.next_id = 0
        self.on_notification = on_notification

    def call(self, method, params):
        self.next_id += 1
        d = self.waiting[self.next_id] = defer.Deferred()
        self.transport.write(orjson.dumps({"jsonrpc": "2.0", "id": self.next_id,
                                           "method": method, "params": params}) + b"\n")
        return d

    def lineReceived(self, line, arrived):
        message = orjson.loads(line)
        if message.get("id") is None:
            if self.on_notification is not None:
                self.on_notification(message.get("method"), message.get("params"))
            return
        d = self.waiting.pop(message.get("id"), None)
        if d is not None:
            d.callback(message)

    def connectionLost(self, reason):
        waiting, self.waiting = self.waiting, {}
        for d in waiting.values():
            d.errback(reason)


def server_usage(pid):
    """(CPU seconds, resident MB, peak resident MB) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    rss, peak = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    return cpu, rss, peak


def report(load, server_pid, cpu_before):
    summary = load.summary()
    elapsed = load.stopped - load.started
    print(f"{summary['all']['requests']:,d} requests over {load.connections} connections in "
          f"{elapsed:.1f}s")
    print(f"{'method':<28}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'wrong':>7}")
    for label, row in summary.items():
        print(f"{label:<28}{row['req_s']:>9,.0f}{row['p50']:>9.2f}{row['p90']:>9.2f}"
              f"{row['p99']:>9.2f}{row['max']:>9.1f}{row['mismatches']:>7,d}")
    if load.errors:
        print("errors: " + ", ".join(f"{m}: {n}" for m, n in sorted(load.errors.items())))
    print(f"client: {load.client_cpu_s:.1f}s CPU in {load.procs} process(es) "
          f"({100 * load.client_cpu_s / elapsed:.0f}% of one core), "
          f"{1e6 * load.client_cpu_s / max(1, summary['all']['requests']):.0f} us a request")
    if server_pid:
        cpu, rss, _peak = server_usage(server_pid)
        print(f"server: {cpu - cpu_before:.1f}s CPU during the load "
              f"({100 * (cpu - cpu_before) / elapsed:.0f}% of one core), RSS {rss:.0f} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="regtest chain preset")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load")
    parser.add_argument("--requests", type=int, default=1_000_000, help="most requests in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", choices=list(MIXES), default="wallet",
                        help="query mix (full: the wallet mix with transactions and "
                             "headers; light: a typical wallet's, see LIGHT_MIX)")
    parser.add_argument("--port", type=int, help="load a running server on 127.0.0.1:PORT")
    parser.add_argument("--pid", type=int, help="that server's pid, for its CPU and RSS")
    parser.add_argument("--scripthashes", help="file of scripthashes (one per line) for --port")
    parser.add_argument("--timeout", type=float, default=600.0, help="start-up limit")
    parser.add_argument("--node-txindex", type=int, choices=(0, 1),
                        help="the built-in node's txindex (default: its own, 1)")
    parser.add_argument("--tx-sample", type=int, default=TX_SAMPLE,
                        help="distinct transactions transaction.get asks for (fewer: more "
                             "repeats, as wallets asking for the same new transactions)")
    parser.add_argument("--procs", type=int, default=1,
                        help="client processes to split the connections over (each about a "
                             "core at most)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a server setting (repeatable), e.g. TX_CACHE_MB=0")
    parser.add_argument("--work-dir", help="work directory to use and keep (default: a new "
                        "temporary one); an index already synced there is served as it is, "
                        "so that loads under different settings can share one sync")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    if args.port:
        used = Path(args.scripthashes).read_text().split() if args.scripthashes else []
        workload = Workload(None, MIXES["wallet"], rng, used)
        port, server_pid, node, server = args.port, args.pid, None, None
    else:
        if args.work_dir:
            work = Path(args.work_dir)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(tempfile.mkdtemp(prefix="load-bench-"))
        node, node_port = start_node(work, args.size, args.timeout, txindex=args.node_txindex)
        facts = ChainFacts(generated_chain(args.size), tx_sample=args.tx_sample)
        workload = Workload(facts, MIXES[args.mix], rng)
        port = free_port()
        server, log = start_server(work, node_port, SERVICES=f"tcp://127.0.0.1:{port}",
                                   MAX_SESSIONS="1000", COST_SOFT_LIMIT="0",
                                   COST_HARD_LIMIT="0",
                                   **dict(s.split("=", 1) for s in args.setting))
        wait_for(log, "serving tcp on", server, args.timeout)
        server_pid = server.pid
        print(f"server log: {log}")
    load = Load(reactor, port, workload, args.connections, args.seconds, args.requests,
                procs=args.procs)
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
        stop(server, node)


if __name__ == "__main__":
    main()
