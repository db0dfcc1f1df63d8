"""Outpoint status from the spent-outpoint table, against a walk of the hinted script's history.

    python bench/outpoint_cost.py [--size medium] [--samples 500] [--batch 25]

Protocol 1.7's `blockchain.outpoint.*` needs the spender of an output.  The
server keeps a table of spent outputs (``s`` rows, see docs/index-layout.rst);
the alternative the issue names needs no table: the spender of an output that
paid script S is in S's history, and the client's `spk_hint` names S.  This
script measures both on a size preset's chain:

table
    `ChainReader.outpoint_status` (no mempool) for outputs of quiet scripts
    (a history of at most 3 transactions) and of the busiest script (the
    longest history), spent and unspent: p50/p99/max in microseconds.
walk
    what answering a *spent* output takes without the table (an unspent one
    is still answered by its ``h`` row): ask the node for the funding
    transaction's height, read the script's history from that block on, and
    fetch the transactions after the funder from the node, `--batch` per
    `getrawtransaction` batch, reading their inputs until one spends the
    output.  p50/p99/max in milliseconds, and the
    transactions fetched per query.
size
    bytes of keys and values per table (before LevelDB's compression), and
    the directory of a fresh, fully compacted copy of the index with the
    ``s`` rows and of one without them (the same chain's index as layout 1
    held it).

It starts the regtest node and our server as processes on loopback (as
`sync_bench.py` does), syncs a fresh index, stops the server, then opens the
index itself.  Every load is bounded: `--samples` queries per kind (a fifth
of them for the walk), one connection to the node.  The work directory is
removed at the end unless `--keep`.
"""

import argparse
import base64
import http.client
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import plyvel

from processes import ROOT, dir_size, start_node, start_server, stop, wait_for

sys.path.insert(0, str(ROOT))

from electrumx.chain.hashes import hash_to_hex_str  # noqa: E402
from electrumx.coins import BitcoinRegtest as COIN  # noqa: E402
from electrumx.index import layout as L  # noqa: E402
from electrumx.index.db import IndexDB  # noqa: E402
from electrumx.index.read_api import ChainReader  # noqa: E402
from electrumx.regtest.cache import load_or_generate  # noqa: E402
from electrumx.regtest.workload import WorkloadParams  # noqa: E402


class NodeRPC:
    """One keep-alive HTTP connection to the regtest node; batched getrawtransaction."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.auth = "Basic " + base64.b64encode(b"regtest:regtest").decode()

    def _post(self, payload):
        self.conn.request("POST", "/", json.dumps(payload), {
            "Authorization": self.auth, "Content-Type": "application/json"})
        return json.loads(self.conn.getresponse().read())

    def confirmations(self, txid):
        reply = self._post({"id": 0, "method": "getrawtransaction",
                            "params": [hash_to_hex_str(txid), 1]})
        return reply["result"]["confirmations"]

    def raw_transactions(self, txids):
        replies = self._post([{"id": n, "method": "getrawtransaction",
                               "params": [hash_to_hex_str(t), 0]} for n, t in enumerate(txids)])
        return [bytes.fromhex(r["result"]) for r in sorted(replies, key=lambda r: r["id"])]


def percentiles(values):
    values = sorted(values)
    return (statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.99))],
            values[-1])


def outputs_by_script(blocks):
    """{hashX: [(prevout, spent?)]} of every spendable output, and its spenders."""
    outputs, spent = {}, set()
    for height, raw in enumerate(blocks):
        for txid, prevouts, outs in COIN.parse_block_txs(raw):
            spent.update(prevouts)
            if height == 0:
                continue
            for idx, (_value, script) in enumerate(outs):
                if not COIN.is_unspendable(script):
                    outputs.setdefault(COIN.hashX_from_script(script), []).append(
                        txid + idx.to_bytes(4, "little"))
    return {hashX: [(p, p in spent) for p in prevouts] for hashX, prevouts in outputs.items()}


def table_cost(reader, prevouts):
    """Microseconds per outpoint_status call."""
    times = []
    clock = time.perf_counter_ns
    for prevout in prevouts:
        txid, idx = prevout[:32], int.from_bytes(prevout[32:], "little")
        start = clock()
        status = reader.outpoint_status(txid, idx)
        times.append((clock() - start) / 1000)
        assert status.known, hash_to_hex_str(txid)
    return times


def walk(db, node, hashX, prevout, batch):
    """(spender txid, transactions fetched) by walking the script's history, no table.

    The index has no txid -> tx_num map for a spent output (its ``h`` row is
    gone), so the node says the funder's height (one verbose call); the
    script's history from that block on is read a page at a time
    (`history_tx_nums_between`), the funder found in it by its txid, and the
    later transactions fetched from the node `batch` at a time until one
    spends the output.
    """
    txid = prevout[:32]
    height = db.height - node.confirmations(txid) + 1
    start, end = db.tx_count_at(height - 1), db.state.tx_count
    funder = None
    fetched = 0
    while True:
        tx_nums = db.history_tx_nums_between(hashX, start, end, batch)
        if not tx_nums:
            return None, fetched
        start = tx_nums[-1] + 1
        if funder is None:
            funder = next((n for n in tx_nums if db.tx_hash(n) == txid), None)
            tx_nums = [n for n in tx_nums if funder is not None and n > funder]
        candidates = [db.tx_hash(n) for n in tx_nums]
        for cand, raw in zip(candidates, node.raw_transactions(candidates) if candidates else []):
            fetched += 1
            if any(txin.prevout == prevout for txin in COIN.deserialize_tx(raw).inputs):
                return cand, fetched


def walk_cost(db, reader, node, hashX, prevouts, batch):
    """(milliseconds, fetched) per spent output, checked against the table's answer."""
    times, fetched = [], []
    for prevout in prevouts:
        start = time.perf_counter()
        spender, count = walk(db, node, hashX, prevout, batch)
        times.append((time.perf_counter() - start) * 1000)
        fetched.append(count)
        want = reader.outpoint_status(prevout[:32], int.from_bytes(prevout[32:], "little"))
        assert spender == want.spender_txid
    return times, fetched


def table_sizes(db):
    """{prefix: (rows, key + value bytes)} over the whole database."""
    rows, size = Counter(), Counter()
    for key, value in db._leveldb.iterator():
        prefix = key[:1].decode()
        rows[prefix] += 1
        size[prefix] += len(key) + len(value)
    return {p: (rows[p], size[p]) for p in sorted(rows)}


def compacted_sizes(db, work):
    """Directory bytes of a fresh, fully compacted copy of the index with the ``s`` rows,
    and of one without them (the same chain's index as layout 1 had it)."""
    sizes = []
    for name, keep in (("with-s", lambda key: True),
                       ("without-s", lambda key: not key.startswith(L.SPENT_PREFIX))):
        path = work / name
        copy = plyvel.DB(str(path), create_if_missing=True, write_buffer_size=16 * 1024 * 1024)
        batch = copy.write_batch()
        for n, (key, value) in enumerate(db._leveldb.iterator()):
            if keep(key):
                batch.put(key, value)
            if n % 100_000 == 0:
                batch.write()
                batch = copy.write_batch()
        batch.write()
        copy.compact_range()
        copy.close()
        sizes.append(dir_size(path))
    return sizes


def sync(work, port, timeout):
    server, log = start_server(work, port, CACHE_MB="1200")
    try:
        wait_for(log, "caught up to height", server, timeout)
    finally:
        stop(server)


def report_table(name, times):
    p50, p99, top = percentiles(times)
    print(f"  table  {name:28s} {len(times):5d} queries  p50 {p50:8.1f} us  p99 {p99:8.1f} us"
          f"  max {top:8.1f} us")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    rng = random.Random(17)
    blocks = load_or_generate(WorkloadParams.preset(args.size))[0]
    work = Path(tempfile.mkdtemp(prefix="outpoint-cost-"))
    node_proc, port = start_node(work, args.size, args.timeout)
    try:
        sync(work, port, args.timeout)
        db = IndexDB(str(work / "db"), COIN)
        db.open()
        reader = ChainReader(db, None, None)
        node = NodeRPC(port)
        node.raw_transactions([db.tx_hash(1)])      # the node indexes its txids on first use
        by_script = outputs_by_script(blocks)
        lengths = {hashX: len(db.history_tx_nums(hashX, 4)) for hashX in by_script}
        busiest = max(by_script, key=lambda h: len(by_script[h]))
        busy_len = len(db.history_tx_nums(busiest))
        quiet = [o for h, outs in by_script.items() if lengths[h] <= 3 for o in outs]
        print(f"size {args.size}: {db.height + 1:,d} blocks, {db.state.tx_count:,d} txs; "
              f"busiest script: {busy_len:,d} transactions, {len(by_script[busiest]):,d} "
              f"outputs")

        def sample(outs, spent):
            chosen = [p for p, s in outs if s == spent]
            return rng.sample(chosen, min(args.samples, len(chosen)))

        for name, outs in (("quiet", quiet), ("busiest", by_script[busiest])):
            for spent in (False, True):
                prevouts = sample(outs, spent)
                table_cost(reader, prevouts)                # warm LevelDB's cache alike
                report_table(f"{name}, {'spent' if spent else 'unspent'}",
                             table_cost(reader, prevouts))
        for name, outs, hashXs in (
                ("quiet", [(p, s) for p, s in quiet], None),
                ("busiest", by_script[busiest], busiest)):
            prevouts = sample(outs, True)[:max(1, args.samples // 5)]
            if hashXs is None:
                owner = {p: h for h, o in by_script.items() if lengths[h] <= 3 for p, _s in o}
                results = [walk_cost(db, reader, node, owner[p], [p], args.batch)
                           for p in prevouts]
                times = [t for r in results for t in r[0]]
                fetched = [f for r in results for f in r[1]]
            else:
                times, fetched = walk_cost(db, reader, node, hashXs, prevouts, args.batch)
            p50, p99, top = percentiles(times)
            f50, f99, fmax = percentiles(fetched)
            print(f"  walk   {name + ', spent':28s} {len(times):5d} queries  p50 {p50:8.2f} ms"
                  f"  p99 {p99:8.2f} ms  max {top:8.2f} ms; txs fetched p50 {f50:g} "
                  f"p99 {f99:g} max {fmax:g} (batches of {args.batch})")
        sizes = table_sizes(db)
        total = sum(b for _r, b in sizes.values())
        print("  table bytes (keys + values, uncompressed):")
        for prefix, (rows, size) in sizes.items():
            print(f"    {prefix}  {rows:10,d} rows  {size / 1e6:9.2f} MB  "
                  f"{100 * size / total:5.1f}%")
        with_s, without_s = compacted_sizes(db, work)
        print(f"  compacted directory: {with_s / 1e6:.1f} MB with the s rows, "
              f"{without_s / 1e6:.1f} MB without (+{100 * (with_s / without_s - 1):.1f}%)")
        db.close()
    finally:
        stop(node_proc)
    if args.keep:
        print(f"work directory: {work}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
