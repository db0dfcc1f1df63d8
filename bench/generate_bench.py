"""Regtest chain generation rate: transactions per second for a size preset.

    python bench/generate_bench.py [--size large]

Generates in memory (no cache), then reports blocks, transactions, bytes and
the longest sampled history.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from electrumx.chain.tx import parse_block_txs  # noqa: E402
from electrumx.regtest.workload import SIZES, WorkloadParams, generate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=list(SIZES))
    args = parser.parse_args()
    start = time.perf_counter()
    blocks, expected = generate(WorkloadParams.preset(args.size))
    elapsed = time.perf_counter() - start
    txs = sum(len(parse_block_txs(b)) for b in blocks)
    print(f"{args.size}: {txs:,d} txs in {len(blocks):,d} blocks "
          f"({sum(map(len, blocks)) / 1e6:,.1f} MB) generated in {elapsed:.1f}s = "
          f"{txs / elapsed:,.0f} tx/s; longest sampled history "
          f"{max(len(h) for h in expected.history):,d} txs")


if __name__ == "__main__":
    main()
