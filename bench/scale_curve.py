"""Sync tx/s and memory against height over one long sync: the scale curve.

    python bench/scale_curve.py --size mainnet-5m [--cache-mb 256] [--every 2]
                                [--max-seconds S]
                                [--out docs/benchmarks/scale-curve-mainnet-5m.png]

Runs the built-in regtest node on the preset's chain and our server
(`twistd -n electrumx`, admin RPC on 127.0.0.1) from an empty database until
it logs that it caught up.  Every `--every` seconds it asks the admin RPC's
`getinfo` for the height of the blocks applied (flushed or not), and reads
the server's RSS from /proc; the transaction count at each height comes from
the index once the sync is over.  Writes the samples as JSON beside the plot, and a PNG of two
panels against height: the sync rate (transactions a second over each
interval, and its moving median) and the RSS.  With `--max-seconds`, a sync
still running then is stopped cleanly and the curve drawn as far as it got
(the JSON says `"complete": false`).  Needs matplotlib (the bench extras).
"""

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from load import server_usage
from processes import (CAUGHT_UP, ROOT, free_port, index_tx_counts, start_node, start_server,
                       stop)


def getinfo(port: int):
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getinfo", "params": []})
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(request.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    return json.loads(data)["result"]


def sample_sync(args, work: Path):
    """[(seconds, height, tx_count, rss_mb)] over the sync, the server's peak RSS,
    whether the sync finished (not cut by --max-seconds), and the node's (RSS, peak
    RSS) at the end, in MB."""
    node, node_port = start_node(work, args.size, args.timeout)
    rpc_port = free_port()
    server, log = start_server(work, node_port, CACHE_MB=str(args.cache_mb),
                               SERVICES=f"rpc://127.0.0.1:{rpc_port}")
    samples = []
    complete = True
    try:
        started = time.monotonic()
        while CAUGHT_UP not in log.read_text():
            if server.poll() is not None or time.monotonic() - started > args.timeout:
                raise SystemExit(f"the server stopped or timed out:\n{log.read_text()[-2000:]}")
            if args.max_seconds and time.monotonic() - started > args.max_seconds:
                complete = False
                break
            info = getinfo(rpc_port)
            if info is not None and info["applied_height"] >= 0:
                samples.append((time.monotonic() - started, info["applied_height"],
                                server_usage(server.pid)[1]))
            time.sleep(args.every)
        info = getinfo(rpc_port)
        samples.append((time.monotonic() - started, info["applied_height"],
                        server_usage(server.pid)[1]))
        peak = server_usage(server.pid)[2]
        node_rss = server_usage(node.pid)[1:]
    finally:
        stop(server, node)
    tx_counts = index_tx_counts(work / "db")
    # A sync cut short stops with its last blocks flushed: heights past that are left out.
    return [(secs, height, tx_counts[height], rss) for secs, height, rss in samples
            if height < len(tx_counts)], peak, complete, node_rss



def rates(samples):
    """(height, tx/s) over each interval between two samples."""
    return [(h1, (n1 - n0) / (t1 - t0)) for (t0, _h0, n0, _r0), (t1, h1, n1, _r1)
            in zip(samples, samples[1:]) if t1 > t0]


def plot(samples, peak, args, png: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    per_interval = rates(samples)
    heights = [h for h, _ in per_interval]
    values = [r for _, r in per_interval]
    window = 9
    moving = [statistics.median(values[max(0, i - window // 2):i + window // 2 + 1])
              for i in range(len(values))]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    top.plot(heights, values, ".", color="0.7", markersize=3, label="each interval")
    top.plot(heights, moving, "-", color="C0", label=f"moving median of {window}")
    top.set_ylabel("sync, transactions/s")
    top.legend(loc="upper right")
    top.grid(alpha=0.3)
    bottom.plot([s[1] for s in samples], [s[3] for s in samples], "-", color="C1")
    bottom.axhline(peak, color="C3", linestyle=":", label=f"peak {peak:.0f} MB")
    bottom.set_ylabel("server RSS, MB")
    bottom.set_xlabel("height")
    bottom.legend(loc="lower right")
    bottom.grid(alpha=0.3)
    total = samples[-1]
    reached = "" if getattr(args, "complete", True) else ", stopped before the tip"
    fig.suptitle(f"txelectrumx sync of {args.size} ({total[2]:,} transactions, "
                 f"{total[1]:,} blocks{reached}),\nCACHE_MB={args.cache_mb}: "
                 f"{total[2] / total[0]:,.0f} tx/s overall", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="mainnet-500k", help="regtest chain preset")
    parser.add_argument("--cache-mb", type=int, default=256)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
    parser.add_argument("--timeout", type=float, default=7200.0)
    parser.add_argument("--max-seconds", type=float, default=0,
                        help="stop the sync after this long and plot what it reached")
    parser.add_argument("--out", help="PNG path (default docs/benchmarks/scale-curve-SIZE.png)")
    parser.add_argument("--replot", help="only draw the PNG again from an earlier JSON")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads(Path(args.replot).read_text())
        args.size, args.cache_mb = saved["size"], saved["cache_mb"]
        args.complete = saved.get("complete", True)
        samples = [tuple(s[k] for k in ("secs", "height", "tx_count", "rss_mb"))
                   for s in saved["samples"]]
        plot(samples, saved["peak_rss_mb"], args, Path(args.out or args.replot).with_suffix(".png"))
        return
    png = Path(args.out or ROOT / "docs" / "benchmarks" / f"scale-curve-{args.size}.png")
    work = Path(tempfile.mkdtemp(prefix="scale-curve-"))
    samples, peak, args.complete, node_rss = sample_sync(args, work)
    png.with_suffix(".json").write_text(json.dumps(
        {"size": args.size, "cache_mb": args.cache_mb, "peak_rss_mb": peak,
         "complete": args.complete, "node_rss_mb": node_rss[0], "node_peak_rss_mb": node_rss[1],
         "samples": [dict(zip(("secs", "height", "tx_count", "rss_mb"), s))
                     for s in samples]}, indent=1))
    plot(samples, peak, args, png)
    total = samples[-1]
    print(f"{args.size}: {total[2]:,} transactions in {total[0]:.0f} s "
          f"({total[2] / total[0]:,.0f} tx/s), peak RSS {peak:.0f} MB; {png}")


if __name__ == "__main__":
    sys.exit(main())
