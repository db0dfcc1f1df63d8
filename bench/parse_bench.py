"""Parse micro-benchmark: transactions per second over the real blocks of tests/data.

    python bench/parse_bench.py [--seconds N] [--runs N]

Prints the median over several runs for the indexer's one-pass parser and,
for comparison, the full-object deserialiser.  A script, not a test.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from electrumx.chain.tx import deserialize_block_txs  # noqa: E402
from electrumx.coins import Bitcoin, Litecoin  # noqa: E402


def load_blocks():
    folder = ROOT / "tests" / "data" / "blocks"
    blocks = []
    for path in sorted(folder.glob("*.json")):
        coin = Litecoin if path.name.startswith("litecoin") else Bitcoin
        blocks.append((coin, bytes.fromhex(json.loads(path.read_text())["block"])))
    return blocks


def rate(parse, blocks, seconds):
    txs = size = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for coin, raw in blocks:
            txs += len(parse(coin, raw))
            size += len(raw)
    elapsed = time.perf_counter() - start
    return txs / elapsed, size / elapsed / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    blocks = load_blocks()
    paths = {
        "fast (indexer)": lambda coin, raw: coin.parse_block_txs(raw),
        "full objects": lambda coin, raw: deserialize_block_txs(raw, allowed_flags=coin.TX_FLAGS),
    }
    print(f"{len(blocks)} blocks, {sum(len(r) for _c, r in blocks):,d} bytes; "
          f"median of {args.runs} runs of {args.seconds}s")
    for name, parse in paths.items():
        runs = [rate(parse, blocks, args.seconds) for _ in range(args.runs)]
        txs = statistics.median(r[0] for r in runs)
        mbs = statistics.median(r[1] for r in runs)
        print(f"{name:>16}: {txs:12,.0f} tx/s {mbs:8.1f} MB/s")


if __name__ == "__main__":
    main()
