"""Initial sync from the built-in regtest node: wall and CPU seconds, tx/s, peak RSS, DB size.

    python bench/sync_bench.py [--size large] [--cache-mb 1200]

Runs the node (`python -m electrumx.regtest`) and the server (`twistd -n
electrumx`) as separate processes on loopback, from an empty database until
the server logs that it caught up.  CPU time and peak RSS are the server's
own, from the kernel's accounting of the finished child.
"""

import argparse
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path

from processes import ROOT, dir_size, start_node, start_server, stop, wait_for


def indexed(db_dir):
    """(height, tx count) of the finished index."""
    sys.path.insert(0, str(ROOT))
    from electrumx.coins import BitcoinRegtest
    from electrumx.index.db import IndexDB
    db = IndexDB(str(db_dir), BitcoinRegtest)
    db.open()
    try:
        return db.height, db.state.tx_count
    finally:
        db.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large")
    parser.add_argument("--cache-mb", default="1200")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    node, port = start_node(work, args.size, args.timeout)
    try:
        start = time.monotonic()
        server, log = start_server(work, port, CACHE_MB=args.cache_mb)
        wait_for(log, "caught up to height", server, args.timeout)
        wall = time.monotonic() - start
        server.send_signal(signal.SIGTERM)
        server.wait()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)      # the server only, so far
        height, txs = indexed(work / "db")
        print(f"size {args.size}: {height + 1:,d} blocks, {txs:,d} txs synced in {wall:.1f}s "
              f"wall ({txs / wall:,.0f} tx/s, {(height + 1) / wall:,.0f} blocks/s), "
              f"{usage.ru_utime + usage.ru_stime:.1f}s CPU, peak RSS "
              f"{usage.ru_maxrss / 1024:.0f} MB, DB {dir_size(work / 'db') / 1e6:.0f} MB "
              f"(CACHE_MB={args.cache_mb})")
        print(f"server log: {log}")
    finally:
        stop(node)


if __name__ == "__main__":
    main()
