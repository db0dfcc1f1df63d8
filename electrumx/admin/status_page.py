"""The status page: the `status_report` as one self-contained HTML page.

The page needs nothing from elsewhere (inline CSS, the fee histogram as an
inline SVG drawn here) and no script: it reloads itself with a meta refresh,
so it works with scripts off and under a Content-Security-Policy that forbids
them.  Client names and peer details are hostile input, and so is every
other string here as far as this module knows: each one goes through `esc`,
and the HTML is built only from constant markup and escaped values.
"""

from html import escape

from electrumx.index.indexer_lifecycle import (CAUGHT_UP, STARTING, STOPPED, SYNCING,
                                               WAITING_FOR_NODE)
from electrumx.index.trouble_log import format_secs

REFRESH_SECS = 10
CHART_BARS = 50
"""Fee histogram bins drawn; lower-fee bins beyond them are drawn as one last bar."""
CHART_WIDTH, CHART_HEIGHT = 720, 220

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;
color:#1d2330;background:#f6f7f9}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:.8em 0 .4em}
h2:first-child{margin-top:0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:1em}
section{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:.8em 1em;
overflow-x:auto}
@media (min-width:800px){.wide{grid-column:span 2}}.full{grid-column:1/-1}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.15em .5em;border-bottom:1px solid #eef0f3;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7280}.ok{color:#15803d}.warn{color:#b45309}
.bar{background:#e5e7eb;border-radius:3px;height:12px}
.bar>div{background:#2563eb;height:12px;border-radius:3px}
code{font-size:.9em;word-break:break-all}
svg text{font:11px system-ui,sans-serif;fill:#4b5563}
"""

INDEXER_STATES = {
    STARTING: ("starting: opening the index, asking the node", "warn"),
    SYNCING: ("syncing", "warn"),
    CAUGHT_UP: ("caught up, serving", "ok"),
    WAITING_FOR_NODE: ("serving; the node is behind the index, waited for", "warn"),
    STOPPED: ("stopped", "warn"),
}
"""What the page says for each of the indexer's states (`Indexer.state`)."""

SECURITY_HEADERS = {
    b"Content-Security-Policy": b"default-src 'none'; style-src 'unsafe-inline'; "
                               b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
    b"Cache-Control": b"no-store",
}
"""Sent with the page: no script, frame or outside file may run or load even if an
escape were ever missed."""


def esc(value) -> str:
    """Any value as HTML text, quotes included (safe in attributes too)."""
    return escape(str(value), quote=True)


def num(value) -> str:
    return f"{value:,d}" if isinstance(value, int) else f"{value:,.2f}"


def vbytes(value) -> str:
    """A size in vbytes, or kvB/MvB when large."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:,.2f} MvB"
    if value >= 1_000:
        return f"{value / 1_000:,.1f} kvB"
    return f"{value:,d} vB"


def byte_size(value) -> str:
    """Bytes, in MB once large."""
    return f"{value / 1048576:,.1f} MB" if value >= 1048576 else f"{value:,d} bytes"


def table(headers, rows, numeric=()) -> str:
    """A table of escaped cells; columns whose index is in `numeric` are right-aligned."""
    def cell(tag, index, value):
        cls = ' class="n"' if index in numeric else ""
        return f"<{tag}{cls}>{esc(value)}</{tag}>"
    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figures(pairs) -> str:
    """Label/value rows; each value cell has the id given, for scripts and tests."""
    rows = "".join(f'<tr><th>{esc(label)}</th><td class="n" id="{esc(ident)}">{esc(value)}'
                   "</td></tr>" for ident, label, value in pairs)
    return f"<table>{rows}</table>"


def render_status_page(report: dict) -> str:
    info = report["server"]
    title = f"{info['version']}: {info['coin']} {info['network']}"
    sections = [_sync(report), _sessions(report), _requests(report), _mempool(report),
                _peers(report), _blocks(report)]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECS}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p class=\"muted\">up {esc(format_secs(info['uptime']))}"
        f" · pid {esc(info['pid'])} · {esc(info['rss_mb'])} MB resident · node "
        f"{esc(info['daemon'] or 'none yet')} · refreshes every {REFRESH_SECS} s · "
        '<a href="/stats">/stats</a> (JSON) · <a href="/metrics">/metrics</a> (Prometheus)'
        "</p></header>"
        f'<div class="grid">{"".join(sections)}</div></body></html>')


def _sync(report) -> str:
    info, progress = report["server"], report["sync"]
    label, style = INDEXER_STATES.get(report["indexer_state"],
                                      (report["indexer_state"], "warn"))
    state = f'<span class="{style}">{esc(label)}</span>'
    lag = max(0, info["daemon_height"] - info["db_height"])
    pairs = [("db-height", "Index height", num(info["db_height"])),
             ("daemon-height", "Node height", num(info["daemon_height"])),
             ("lag", "Blocks behind", num(lag))]
    extra = ""
    if progress is not None and report["indexer_state"] == SYNCING:
        pairs += [("sync-rate", "Transactions/s", num(round(progress["tx_per_sec"]))),
                  ("sync-eta", "ETA (a floor)", format_secs(progress["eta_secs"]))]
        percent = min(100.0, max(0.0, progress["percent"]))
        extra = (f'<div class="bar" title="{percent:.1f}%"><div style="width:{percent:.1f}%">'
                 f"</div></div><p>{percent:.1f}% of the node's chain</p>")
    return (f'<section id="sync"><h2>Index</h2><p id="sync-state">{state}</p>'
            f"{figures(pairs)}{extra}<p class=\"muted\">tip <code>{esc(info['db_tip'])}</code>"
            f"<br>{esc(info['tx_lookup'])}</p></section>")


def _sessions(report) -> str:
    info, sessions = report["server"], report["sessions"]
    pairs = [("sessions-open", "Sessions open", num(info["sessions"])),
             ("sessions-opened", "Opened since start", num(info["sessions_opened"])),
             ("subscriptions", "Script subscriptions", num(info["subscriptions"])),
             ("groups", "Groups", num(info["groups"])),
             ("banned", "Banned networks", num(info["banned"]))]
    clients = [(name, num(count)) for name, count in sessions["by_client"]]
    hidden = sessions["clients_not_shown"]
    if hidden["clients"]:
        clients.append((f"{hidden['clients']:,d} other clients", num(hidden["sessions"])))
    return ('<section id="sessions"><h2>Sessions</h2>' + figures(pairs)
            + "<h2>By protocol</h2>"
            + table(["Version", "Sessions"], [(v, num(n)) for v, n in sessions["by_protocol"]],
                    numeric={1})
            + '<h2>By client</h2><div id="clients">'
            + table(["Client", "Sessions"], clients, numeric={1}) + "</div></section>")


def _requests(report) -> str:
    info, rates = report["server"], report["requests_per_sec"]
    rows = [(method, f"{rate:,.2f}") for method, rate in rates["by_method"].items()]
    return ('<section id="requests"><h2>Requests per second</h2>'
            f"<p class=\"muted\">over the last {esc(format_secs(rates['window_secs']))}; "
            f"{esc(num(info['requests']))} requests and {esc(num(info['errors']))} errors "
            f"since start; {esc(byte_size(info['bytes_received']))} in, "
            f"{esc(byte_size(info['bytes_sent']))} out</p>"
            + table(["Method", "Per second"], rows, numeric={1}) + "</section>")


def _mempool(report) -> str:
    info = report["server"]
    pairs = [("mempool-txs", "Transactions", num(info["mempool_txs"])),
             ("mempool-vsize", "Virtual size", vbytes(info["mempool_vsize"]))]
    return ('<section id="mempool" class="wide"><h2>Mempool</h2>' + figures(pairs)
            + "<h2>Fee histogram</h2>" + fee_histogram_svg(report["fee_histogram"])
            + "</section>")


def fee_histogram_svg(histogram) -> str:
    """The compact fee histogram ([[fee rate, vsize], ...], highest rate first) as a bar
    chart: one bar per bin, the highest fee rates on the left."""
    if not histogram:
        return '<p class="muted" id="fee-chart">No fee histogram yet: the mempool is empty.</p>'
    bins = [(rate, size) for rate, size in histogram[:CHART_BARS]]
    if len(histogram) > CHART_BARS:
        rest = histogram[CHART_BARS:]
        bins.append((rest[-1][0], sum(size for _, size in rest)))
    top = max(size for _, size in bins) or 1
    left, bottom, plot_h = 60, 40, CHART_HEIGHT - 50
    step = (CHART_WIDTH - left - 10) / len(bins)
    label_every = max(1, len(bins) // 12)
    parts = [f'<svg id="fee-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
             f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" style="max-width:100%;height:auto">'
             "<title>Mempool virtual size by fee rate</title>",
             f'<line x1="{left}" y1="{CHART_HEIGHT - bottom}" x2="{CHART_WIDTH - 10}" '
             f'y2="{CHART_HEIGHT - bottom}" stroke="#9ca3af"/>',
             f'<text x="{left - 4}" y="14" text-anchor="end">{esc(vbytes(top))}</text>',
             f'<text x="{left - 4}" y="{CHART_HEIGHT - bottom}" text-anchor="end">0</text>',
             f'<text x="{left + (CHART_WIDTH - left) / 2:.0f}" y="{CHART_HEIGHT - 4}" '
             'text-anchor="middle">fee rate, sat/vB (at least)</text>']
    for i, (rate, size) in enumerate(bins):
        h = size / top * plot_h
        x = left + i * step
        y = CHART_HEIGHT - bottom - h
        parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="#2563eb"><title>{esc(f"{rate:g}")} sat/vB and '
                     f"up: {esc(vbytes(size))}</title></rect>")
        if i % label_every == 0:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{CHART_HEIGHT - bottom + 14}" '
                         f'text-anchor="middle">{esc(f"{rate:g}")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _blocks(report) -> str:
    rows = [(num(b["height"]), b["hash"], num(b["tx_count"]), num(b["size"]),
             f"{b['applied_secs'] * 1000:,.1f}",
             "" if b["flush_and_notify_secs"] is None
             else f"{b['flush_and_notify_secs'] * 1000:,.1f}",
             format_secs(b["age_secs"]) + " ago")
            for b in report["recent_blocks"]]
    return ('<section id="blocks" class="full"><h2>Last blocks</h2>'
            + table(["Height", "Hash", "Txs", "Bytes", "Apply ms", "Flush+notify ms", "Indexed"],
                    rows, numeric={0, 2, 3, 4, 5})
            + '<p class="muted">Apply: into the cache; flush+notify (once caught up): to '
              "LevelDB, the mempool and subscribers.</p></section>")


def _peers(report) -> str:
    peers = report["peers"]
    rows = [(p["host"], p["tcp_port"] or "", p["ssl_port"] or "", p["status"],
             p["server_version"] or "", p["source"]) for p in peers["shown"]]
    more = (f'<p class="muted">and {peers["not_shown"]:,d} more (electrumx-rpc peers)</p>'
            if peers["not_shown"] else "")
    return ('<section id="peers"><h2>Peers</h2>'
            + (table(["Host", "TCP", "SSL", "Status", "Server", "Source"], rows)
               if rows else '<p class="muted">No peers known.</p>')
            + more + "</section>")
