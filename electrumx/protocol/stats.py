"""Counters over all client sessions since start, for the admin RPC and metrics.

Kept apart from the sessions so that a closed session's requests still count.
Method names are counted only for methods the server knows; anything else a
client sends is counted as "(unknown)", so a client cannot grow the table.
"""

from collections import Counter

UNKNOWN_METHOD = "(unknown)"

TIMEOUT_PHASES = ("handshake", "unidentified", "partial_request")
"""What a client was too slow to finish: its TLS handshake or WebSocket upgrade
(HANDSHAKE_TIMEOUT), its server.version (UNIDENTIFIED_TIMEOUT), or a request
line (PARTIAL_REQUEST_TIMEOUT)."""


class ServerStats:
    """Requests by method, errors by code, bytes each way, sessions opened, and
    connections dropped for being too slow, by one of TIMEOUT_PHASES."""

    def __init__(self):
        self.requests = Counter()
        self.errors = Counter()
        self.bytes_received = 0
        self.bytes_sent = 0
        self.sessions_opened = 0
        self.timed_out = Counter()

    def request(self, method: str, known: bool):
        self.requests[method if known else UNKNOWN_METHOD] += 1

    def error(self, code: int):
        self.errors[code] += 1
