"""Counters over all client sessions since start, for the admin RPC and metrics, and
the census of the open ones by client, for the status page.

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


class ClientCensus:
    """The open sessions that sent server.version, counted by protocol version and by
    client name, kept up to date as sessions identify and close.

    So the status page reads two tables as long as the distinct versions and names,
    and never walks every session (at tens of thousands of sessions, that walk is what
    its cost would be).
    """

    def __init__(self):
        self.by_version = Counter()
        self.by_name = Counter()
        self._keys = {}         # session id -> (version, name) it was counted under

    def identified(self, session_id: int, protocol_version: tuple, client_name: str):
        self._keys[session_id] = (protocol_version, client_name)
        self.by_version[protocol_version] += 1
        self.by_name[client_name] += 1

    def closed(self, session_id: int):
        key = self._keys.pop(session_id, None)
        if key is not None:
            _decrement(self.by_version, key[0])
            _decrement(self.by_name, key[1])

    @property
    def identified_count(self) -> int:
        return len(self._keys)


def _decrement(counter: Counter, key):
    """One less of `key`, forgotten at zero (the tables hold only what is open)."""
    counter[key] -= 1
    if not counter[key]:
        del counter[key]
