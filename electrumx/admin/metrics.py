"""A Prometheus text endpoint (`GET /metrics`), off unless METRICS_PORT is set.

Everything is read from counters the server keeps anyway (session stats,
indexer timings, daemon counts), when Prometheus scrapes, so the endpoint
costs nothing between scrapes.  The text format is version 0.0.4: `# HELP`
and `# TYPE` lines, then one sample per line.
"""

from twisted.web import resource

from electrumx.admin.process import resident_memory_bytes
from electrumx.protocol.stats import TIMEOUT_PHASES

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class MetricsText:
    """Builds the exposition text family by family."""

    def __init__(self):
        self.lines = []

    def family(self, name, kind, help_text, samples):
        """`samples`: [(labels dict or None, value)]."""
        self.lines.append(f"# HELP electrumx_{name} {help_text}")
        self.lines.append(f"# TYPE electrumx_{name} {kind}")
        for labels, value in samples:
            self.lines.append(f"electrumx_{name}{_labels(labels)} {_number(value)}")

    def one(self, name, kind, help_text, value):
        self.family(name, kind, help_text, [(None, value)])

    def timing(self, name, help_text, timing):
        """A count-and-sum summary of seconds (indexer `Timing`)."""
        self.lines.append(f"# HELP electrumx_{name}_seconds {help_text}")
        self.lines.append(f"# TYPE electrumx_{name}_seconds summary")
        self.lines.append(f"electrumx_{name}_seconds_count {timing.count}")
        self.lines.append(f"electrumx_{name}_seconds_sum {_number(timing.seconds)}")

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def _labels(labels):
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def render_metrics(controller) -> bytes:
    """The whole exposition for one scrape."""
    c = controller
    stats = c.sessions.stats
    out = MetricsText()
    out.one("sessions", "gauge", "Client sessions open now.", len(c.sessions.sessions))
    out.one("sessions_opened_total", "counter", "Client sessions opened since start.",
            stats.sessions_opened)
    out.one("refused_per_ip_total", "counter", "Connections refused at accept: their "
            "address had MAX_CLIENTS_PER_IP open.", c.sessions.admission.refused)
    out.family("timed_out_total", "counter", "Connections dropped for not finishing a "
               "phase in time.", [({"phase": phase}, stats.timed_out[phase])
                                  for phase in TIMEOUT_PHASES])
    out.one("subscriptions", "gauge", "Script subscriptions held now.",
            c.subscriptions.subscription_count)
    out.family("requests_total", "counter", "Client requests by method.",
               [({"method": m}, n) for m, n in sorted(stats.requests.items())])
    out.family("errors_total", "counter", "Error replies to clients by JSON-RPC code.",
               [({"code": code}, n) for code, n in sorted(stats.errors.items())])
    out.one("received_bytes_total", "counter", "Bytes received from clients.",
            stats.bytes_received)
    out.one("sent_bytes_total", "counter", "Bytes sent to clients.", stats.bytes_sent)
    daemon_height = c.indexer.prefetcher.daemon_height
    out.one("db_height", "gauge", "Height of the index.", c.db.height)
    out.one("daemon_height", "gauge", "Height of the node's chain.", daemon_height)
    out.one("sync_lag_blocks", "gauge", "Blocks the index is behind the node.",
            max(0, daemon_height - c.db.height))
    out.timing("block_processing", "Time spent applying blocks to the cache.",
               c.indexer.timings.blocks)
    out.timing("flush", "Time spent writing the cache to LevelDB.", c.indexer.timings.flushes)
    out.one("flush_longest_stall_seconds", "gauge", "Longest a flush held the reactor.",
            c.indexer.timings.longest_flush_stall)
    processor = c.indexer.processor
    out.one("unflushed_cache_bytes", "gauge", "Estimated bytes of changes not yet flushed.",
            processor.cache_bytes() if processor is not None else 0)
    cache = c.reader.cache_stats()
    out.family("read_cache_entries", "gauge", "Entries in the read caches.",
               [({"cache": name}, entry["entries"]) for name, entry in cache.items()])
    out.family("read_cache_hits_total", "counter", "Read cache hits.",
               [({"cache": name}, entry["hits"]) for name, entry in cache.items()])
    out.family("read_cache_misses_total", "counter", "Read cache misses.",
               [({"cache": name}, entry["misses"]) for name, entry in cache.items()])
    out.one("mempool_transactions", "gauge", "Transactions in the mempool.",
            c.mempool.tx_count)
    out.one("mempool_vsize_bytes", "gauge", "Virtual size of the mempool.",
            c.mempool.total_vsize)
    out.one("daemon_requests_total", "counter", "HTTP requests to the node.",
            c.daemon.request_count)
    out.one("daemon_errors_total", "counter", "Requests that found the node unavailable.",
            c.daemon.failure_count)
    if c.zmq is not None:
        counts = c.zmq.counts
        out.family("zmq_messages_total", "counter", "Notifications received from the node "
                   "over ZMQ, by topic.", [({"topic": t}, n) for t, n in
                                            sorted(counts.messages.items())])
        out.one("zmq_gaps_total", "counter", "Gaps in the node's ZMQ message counters "
                "(messages lost, or the node restarted); each triggered a refresh.",
                counts.gaps)
        out.one("zmq_malformed_total", "counter", "ZMQ messages that were no notification; "
                "each triggered a refresh.", counts.malformed)
    out.one("resident_memory_bytes", "gauge", "Resident memory of the process.",
            resident_memory_bytes())
    return out.text()


class MetricsResource(resource.Resource):
    """`/metrics`: the exposition text."""

    isLeaf = True

    def __init__(self, controller):
        super().__init__()
        self.controller = controller

    def render_GET(self, request):
        request.setHeader(b"Content-Type", CONTENT_TYPE)
        return render_metrics(self.controller)
