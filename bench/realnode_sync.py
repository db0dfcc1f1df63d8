"""Initial sync from a real Bitcoin SV bitcoind, with and without HTTP connection reuse.

    python bench/realnode_sync.py [--blocks 300] [--rounds 3]

Makes the tests/realnode wallet chain on a fresh regtest node (install it
first: python3 tests/realnode/install_node.py), then indexes it from an empty
database in this process, alternating a Daemon that fetches blocks over its
kept-alive connections with one that fetches them over a fresh connection
each batch (the default).  The node stalls about 40 ms on large replies sent
over a kept-alive connection.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from twisted.internet import defer, task  # noqa: E402

from electrumx.coins import BitcoinSVRegtest  # noqa: E402
from electrumx.config.daemon_url import parse_daemon_url  # noqa: E402
from electrumx.index.daemon import Daemon  # noqa: E402
from electrumx.index.db import IndexDB  # noqa: E402
from electrumx.index.indexer import Indexer  # noqa: E402
from electrumx.index.mempool import MemPool  # noqa: E402
from tests.realnode.node import BSVNode, find_bitcoind  # noqa: E402
from tests.realnode.workload import Workload, generate  # noqa: E402


async def sync_once(reactor, url, db_dir, persistent):
    daemon = Daemon(reactor, [parse_daemon_url(url, 18332)], fresh_block_connections=not persistent)
    db = IndexDB(str(db_dir), BitcoinSVRegtest)
    indexer = Indexer(db, daemon, MemPool(BitcoinSVRegtest, db, daemon, reactor), reactor,
                      cache_mb=256, reorg_limit=200, block_poll_secs=1, mempool_poll_secs=60,
                      on_fatal=print)
    start = time.perf_counter()
    indexer.startService()
    height = await indexer.when_caught_up()
    elapsed = time.perf_counter() - start
    requests = daemon.request_count
    indexer.stopService()
    await daemon.close()
    return height, elapsed, requests


async def run(reactor, args):
    bitcoind = find_bitcoind()
    if bitcoind is None:
        raise SystemExit("install the node first: python3 tests/realnode/install_node.py")
    with tempfile.TemporaryDirectory() as tmp:
        node = BSVNode(bitcoind, Path(tmp) / "node").start()
        try:
            generate(node, Workload(blocks=args.blocks))
            results = {True: [], False: []}
            for n in range(args.rounds):
                for persistent in (True, False):
                    db_dir = Path(tmp) / f"db-{n}-{persistent}"
                    height, elapsed, requests = await sync_once(reactor, node.url, db_dir,
                                                                persistent)
                    results[persistent].append(elapsed)
                    print(f"{'reuse' if persistent else 'fresh'}: {height + 1} blocks in "
                          f"{elapsed:.3f} s ({requests} requests)", flush=True)
            for persistent, times in results.items():
                how = ("blocks over kept-alive connections" if persistent
                       else "a fresh connection per getblock batch")
                median = sorted(times)[len(times) // 2]
                print(f"{how}: best {min(times):.3f} s, median {median:.3f} s")
        finally:
            node.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args)))


if __name__ == "__main__":
    main()
