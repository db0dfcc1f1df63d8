"""How fast the built-in regtest node serves raw blocks to a batched client.

    python bench/node_serving.py [--size large] [--batch 100]

Starts `python -m electrumx.regtest` as a separate process on a free
loopback port, then fetches every block with batched getblockhash/getblock
calls through the server's own node client, and prints blocks/s and MB/s.
"""

import argparse
import os
import subprocess
import sys
import time

from processes import ROOT, free_port

sys.path.insert(0, str(ROOT))

from twisted.internet import defer, task  # noqa: E402

from electrumx.config.daemon_url import parse_daemon_url  # noqa: E402
from electrumx.index.daemon import Daemon  # noqa: E402


async def fetch_all(reactor, port, batch):
    daemon = Daemon(reactor, [parse_daemon_url(f"regtest:regtest@127.0.0.1:{port}", port)])
    for _ in range(600):
        try:
            height = await daemon.height()
            break
        except Exception:
            await task.deferLater(reactor, 0.1, lambda: None)
    start = time.perf_counter()
    total = 0
    for first in range(0, height + 1, batch):
        hashes = await daemon.block_hashes(first, min(batch, height + 1 - first))
        total += sum(len(b) for b in await daemon.raw_blocks(hashes))
    elapsed = time.perf_counter() - start
    await daemon.close()
    print(f"{height + 1:,d} blocks, {total / 1e6:,.1f} MB in {elapsed:.2f}s: "
          f"{(height + 1) / elapsed:,.0f} blocks/s, {total / 1e6 / elapsed:,.1f} MB/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    port = free_port()
    node = subprocess.Popen([sys.executable, "-m", "electrumx.regtest", "--size", args.size,
                             "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        task.react(lambda reactor: defer.ensureDeferred(fetch_all(reactor, port, args.batch)))
    finally:
        node.terminate()
        node.wait()


if __name__ == "__main__":
    main()
