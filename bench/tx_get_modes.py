"""transaction.get with and without the node's txindex, with and without TX_CACHE_MB.

    python bench/tx_get_modes.py [--rounds 3] [--size small] [--connections 20] [--seconds 8]
                                 [--tx-sample 2000]

Runs bench/load.py's FULL_MIX (which includes transaction.get) once per mode
per round, the modes alternated within each round (the machine may be
shared), each with its own built-in node and server, and prints the median
over the rounds of transaction.get's p50 and p99, its req/s, and all
requests' req/s.
"""

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = {
    "txindex=1, cache": (1, "64"),
    "txindex=0, cache": (0, "64"),
    "txindex=1, no cache": (1, "0"),
    "txindex=0, no cache": (0, "0"),
}
ROW = re.compile(r"^(\w+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d,]+)$")


def run(args, txindex, cache_mb):
    out = subprocess.run(
        [sys.executable, str(HERE / "load.py"), "--mix", "full", "--size", args.size,
         "--connections", str(args.connections), "--seconds", str(args.seconds),
         "--node-txindex", str(txindex), "--setting", f"TX_CACHE_MB={cache_mb}",
         "--tx-sample", str(args.tx_sample)],
        capture_output=True, text=True, timeout=args.seconds + 600, check=True).stdout
    rows = {}
    for line in out.splitlines():
        m = ROW.match(line.strip())
        if m:
            rows[m[1]] = dict(req_s=float(m[2].replace(",", "")), p50=float(m[3]),
                              p99=float(m[5]), wrong=int(m[7].replace(",", "")))
    assert rows["all"]["wrong"] == 0, out
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="small")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--tx-sample", type=int, default=2_000,
                        help="distinct transactions asked for (load.py's --tx-sample)")
    args = parser.parse_args()
    results = {mode: [] for mode in MODES}
    for n in range(args.rounds):
        for mode, (txindex, cache_mb) in MODES.items():
            rows = run(args, txindex, cache_mb)
            results[mode].append(rows)
            print(f"round {n + 1} {mode:<20} get p50 {rows['get']['p50']:7.2f} ms  p99 "
                  f"{rows['get']['p99']:7.2f} ms  get {rows['get']['req_s']:5.0f}/s  all "
                  f"{rows['all']['req_s']:5.0f}/s", flush=True)
    print(f"\nmedians of {args.rounds} rounds")
    print(f"{'mode':<22}{'get p50':>9}{'get p99':>9}{'get/s':>7}{'all/s':>7}")
    for mode, runs in results.items():
        def med(row, key):
            return statistics.median(r[row][key] for r in runs)
        print(f"{mode:<22}{med('get', 'p50'):>9.2f}{med('get', 'p99'):>9.2f}"
              f"{med('get', 'req_s'):>7.0f}{med('all', 'req_s'):>7.0f}")


if __name__ == "__main__":
    main()
