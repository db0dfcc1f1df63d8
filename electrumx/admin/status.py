"""What the status page (`/`) and `/stats` show, gathered as one plain-JSON report.

Every figure comes from what the server keeps anyway: `getinfo` (the admin
command) for the server at a glance, the indexer's sync progress and its
ring of recent blocks, the session table, the request counters, the
mempool's cached fee histogram and the peer list.  Lists that grow with the
world outside (client names, peers) are cut to a fixed length, so the report
costs the same to show whatever clients send, and nothing walks the sessions:
clients are counted as they identify and leave (`ClientCensus`), so building
the report costs as much with 10,000 sessions as with 10.
"""

import time
from collections import deque
from dataclasses import asdict

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.protocol.version import version_string

TOP_CLIENTS = 20
"""Client names shown, the most common first; the rest are only counted."""
PEERS_SHOWN = 25
"""Peers shown, good ones first; the rest are only counted."""
UNIDENTIFIED = "(no server.version yet)"
NO_NAME = "(no name)"


class RequestRates:
    """Requests per second by method over about the last WINDOW_SECS.

    The running counters (`ServerStats.requests`) are sampled only when the
    page or /stats is read, at most once per SAMPLE_SECS, so the rates cost
    nothing while nobody looks and the samples kept stay few.  The first
    sample is the server's start, when every counter was zero: a first look
    shows the average since start.
    """

    WINDOW_SECS = 60.0
    SAMPLE_SECS = 5.0

    def __init__(self, clock, stats):
        self.clock = clock
        self.stats = stats
        self._samples = deque([(clock.seconds(), {})])

    def rates(self) -> tuple[float, dict]:
        """(seconds the rates are over, {method: requests per second}), busiest first."""
        now = self.clock.seconds()
        counts = dict(self.stats.requests)
        samples = self._samples
        # Keep the newest sample at least a window old (or the oldest there is).
        while len(samples) > 1 and now - samples[1][0] >= self.WINDOW_SECS:
            samples.popleft()
        since, base = samples[0]
        if now - samples[-1][0] >= self.SAMPLE_SECS:
            samples.append((now, counts))
        elapsed = now - since
        if elapsed <= 0:
            return 0.0, {}
        rates = {method: (count - base.get(method, 0)) / elapsed
                 for method, count in counts.items() if count > base.get(method, 0)}
        return elapsed, dict(sorted(rates.items(), key=lambda item: (-item[1], item[0])))


def session_breakdown(census, session_count: int) -> dict:
    """The open sessions by protocol version and by client name (the TOP_CLIENTS most
    common, then by name; `clients_not_shown` counts the other names and their
    sessions), from the session manager's `ClientCensus`: nothing here walks the
    sessions, and only a C-level pass walks the distinct names.  Sessions that have
    not sent server.version yet count as UNIDENTIFIED."""
    protocols = {version_string(v): n for v, n in census.by_version.items()}
    # One more than shown: the UNIDENTIFIED row may push one out.
    top = [(name or NO_NAME, n) for name, n in census.by_name.most_common(TOP_CLIENTS + 1)]
    distinct = len(census.by_name)
    unidentified = session_count - census.identified_count
    if unidentified > 0:
        protocols[UNIDENTIFIED] = unidentified
        top.append((UNIDENTIFIED, unidentified))
        distinct += 1
    shown = sorted(top, key=lambda item: (-item[1], item[0]))[:TOP_CLIENTS]
    return {
        "by_protocol": sorted(protocols.items()),
        "by_client": shown,
        "clients_not_shown": {"clients": distinct - len(shown),
                              "sessions": session_count - sum(n for _, n in shown)},
    }


def peer_listing(rows) -> dict:
    """The admin `peers` rows, good ones first, cut to PEERS_SHOWN."""
    order = {"good": 0, "stale": 1, "never": 2, "bad": 3}
    ranked = sorted(rows, key=lambda row: order.get(row["status"], 4))
    return {"shown": ranked[:PEERS_SHOWN], "not_shown": max(0, len(rows) - PEERS_SHOWN)}


def recent_blocks(timings) -> list:
    """The indexer's ring of recent blocks, newest first."""
    now = time.time()
    return [{"height": b.height, "hash": hash_to_hex_str(b.block_hash),
             "tx_count": b.tx_count, "size": b.size,
             "applied_secs": round(b.applied_secs, 6),
             "flush_and_notify_secs": (None if b.flush_and_notify_secs is None
                                       else round(b.flush_and_notify_secs, 6)),
             "age_secs": round(max(0.0, now - b.indexed_at))}
            for b in reversed(timings.recent_blocks)]


def status_report(controller, rates: RequestRates) -> dict:
    """The whole report: `server` is the admin `getinfo`, the rest is what it lacks."""
    c = controller
    progress = c.indexer.sync_progress()
    window, per_method = rates.rates()
    return {
        "server": c.admin.getinfo(),
        "indexer_state": c.indexer.state,
        "sync": asdict(progress) if progress is not None else None,
        "sessions": session_breakdown(c.sessions.census, len(c.sessions.sessions)),
        "requests_per_sec": {"window_secs": round(window, 1),
                             "by_method": {m: round(r, 3) for m, r in per_method.items()}},
        "fee_histogram": c.mempool.fee_histogram(),
        "peers": peer_listing(c.admin.peers()),
        "recent_blocks": recent_blocks(c.indexer.timings),
    }
