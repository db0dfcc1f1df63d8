"""Initial sync from the built-in regtest node: wall and CPU seconds, tx/s, peak RSS, DB size.

    python bench/sync_bench.py [--size large] [--cache-mb 1200]

Runs the node (`python -m electrumx.regtest`) and the server (`twistd -n
electrumx`) as separate processes on loopback, from an empty database until
the server logs that it caught up.  CPU time and peak RSS are the server's
own, from the kernel's accounting of the finished child.
"""

import argparse
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWISTD = "from twisted.scripts.twistd import run; run()"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path, text, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[:3]} exited:\n{path.read_text()[-2000:]}")
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {text!r}")


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


def dir_size(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large")
    parser.add_argument("--cache-mb", default="1200")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    node_log = work / "node.log"
    node = subprocess.Popen([sys.executable, "-m", "electrumx.regtest", "--size", args.size,
                             "--port", str(port)], stdout=node_log.open("w"),
                            stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        wait_for(node_log, "serving on", node, args.timeout)
        server_env = dict(env, ALLOW_ROOT="1", COIN="Bitcoin", NET="regtest",
                          DAEMON_URL=f"http://regtest:regtest@127.0.0.1:{port}/",
                          DB_DIRECTORY=str(work / "db"), CACHE_MB=args.cache_mb)
        log = work / "server.log"
        start = time.monotonic()
        server = subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=",
                                   "electrumx"], stdout=log.open("w"),
                                  stderr=subprocess.STDOUT, env=server_env, cwd=work)
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
        node.terminate()
        node.wait()


if __name__ == "__main__":
    main()
