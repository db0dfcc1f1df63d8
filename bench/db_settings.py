"""LevelDB settings A/B: initial syncs with today's settings and with each variant, alternated.

    python bench/db_settings.py --size mainnet-500k --cache-mb 256 --rounds 3 \\
        --variant DB_BLOOM_BITS=10 --variant DB_BLOCK_CACHE_MB=8,DB_WRITE_BUFFER_MB=4

One built-in regtest node serves every sync (a sync only reads it).  Each
round syncs a fresh database once with the server's defaults (the baseline)
and once with each `--variant` (comma-separated NAME=VALUE settings), the
order reversed every other round, so that a change in the shared machine's
load falls on all of them alike.  For each sync: wall seconds to "caught up",
tx/s, the server's CPU seconds and peak RSS (VmHWM, read just before it is
stopped) and the database's size after a clean stop (then it is deleted).  Prints every run, then
the medians and each variant's ratio to the baseline.
"""

import argparse
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

from load import server_usage
from processes import dir_size, start_node, start_server, stop, wait_for
from sync_bench import indexed

BASELINE = "defaults"


def parse_variant(text: str) -> dict:
    """'A=1,B=2' as {'A': '1', 'B': '2'}."""
    settings = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--variant {text!r}: {item!r} is not NAME=VALUE")
        settings[name.strip()] = value.strip()
    return settings


def sync_once(work: Path, node_port: int, cache_mb: str, settings: dict, timeout: float):
    """One sync from an empty database: its figures as a dict."""
    work.mkdir()
    start = time.monotonic()
    server, log = start_server(work, node_port, CACHE_MB=cache_mb, **settings)
    try:
        wait_for(log, "caught up to height", server, timeout)
        wall = time.monotonic() - start
        cpu, _rss, peak = server_usage(server.pid)
        server.send_signal(signal.SIGTERM)
        server.wait(120)
    finally:
        stop(server)
    _height, txs = indexed(work / "db")
    row = {"wall": wall, "tx_s": txs / wall, "cpu": cpu, "peak_mb": peak,
           "db_mb": dir_size(work / "db") / 1e6}
    shutil.rmtree(work)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="mainnet-500k")
    parser.add_argument("--cache-mb", default="256")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE[,...]",
                        help="settings to compare with the defaults (repeatable)")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    configs = [(BASELINE, {})] + [(text, parse_variant(text)) for text in args.variant]
    work = Path(tempfile.mkdtemp(prefix="db-settings-"))
    node, port = start_node(work, args.size, args.timeout)
    results: dict[str, list[dict]] = {label: [] for label, _ in configs}
    try:
        for round_no in range(args.rounds):
            order = configs if round_no % 2 == 0 else configs[::-1]
            for label, settings in order:
                run_dir = work / f"r{round_no}-{len(results[label])}-{label.replace(',', '+')}"
                row = sync_once(run_dir, port, args.cache_mb, settings, args.timeout)
                results[label].append(row)
                print(f"round {round_no + 1} {label:<40} {row['tx_s']:>8,.0f} tx/s "
                      f"{row['wall']:>6.1f}s wall {row['cpu']:>6.1f}s CPU peak RSS "
                      f"{row['peak_mb']:>5.0f} MB DB {row['db_mb']:>6.0f} MB", flush=True)
    finally:
        stop(node)
    print(f"\n{args.size}, CACHE_MB={args.cache_mb}, medians of {args.rounds} "
          "(ratio to the defaults)")
    base = {k: statistics.median(r[k] for r in results[BASELINE]) for k in results[BASELINE][0]}
    for label, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"{label:<40} tx/s {med['tx_s']:>8,.0f} (x{med['tx_s'] / base['tx_s']:.2f})  "
              f"CPU {med['cpu']:>6.1f}s (x{med['cpu'] / base['cpu']:.2f})  "
              f"peak RSS {med['peak_mb']:>5.0f} MB (x{med['peak_mb'] / base['peak_mb']:.2f})  "
              f"DB {med['db_mb']:>6.0f} MB (x{med['db_mb'] / base['db_mb']:.2f})")


if __name__ == "__main__":
    main()
