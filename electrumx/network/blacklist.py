"""Hosts never to check or list: BLACKLIST_URL, a JSON array of host patterns.

A pattern is a host name or address, or "*.example.com" for every name under
example.com.  The list is fetched over HTTP(S) with Twisted's Agent (or read
from a local file given as a path or file:// URL), with a size and time bound.
"""

import orjson
from twisted.internet import defer, protocol
from twisted.web.client import Agent, ResponseDone
from twisted.web.http import PotentialDataLoss

MAX_BLACKLIST_BYTES = 1_000_000
FETCH_TIMEOUT = 30.0


class BlacklistError(Exception):
    """The blacklist could not be fetched or is not a JSON array of strings."""


def parse_blacklist(data: bytes) -> frozenset:
    try:
        entries = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BlacklistError("not JSON") from None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise BlacklistError("not a JSON array of host names")
    return frozenset(e.strip().lower() for e in entries if e.strip())


def is_blacklisted(host: str, patterns) -> bool:
    if host in patterns:
        return True
    parts = host.split(".")
    return any("*." + ".".join(parts[i:]) in patterns for i in range(1, len(parts)))


class _BoundedBody(protocol.Protocol):
    def __init__(self, finished, limit):
        self.finished = finished
        self.limit = limit
        self.data = bytearray()

    def dataReceived(self, data):
        self.data += data
        if len(self.data) > self.limit:
            self.transport.stopProducing()

    def connectionLost(self, reason):
        if len(self.data) > self.limit:
            self.finished.errback(BlacklistError(f"over {self.limit:,d} bytes"))
        elif reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(bytes(self.data))
        else:
            self.finished.errback(BlacklistError(str(reason.value)[:100]))


async def fetch_blacklist(reactor, url: str) -> frozenset:
    """The patterns at `url` (http, https, file:// or a path); raises BlacklistError."""
    if url.startswith("file://") or "://" not in url:
        path = url[len("file://"):] if url.startswith("file://") else url
        try:
            with open(path, "rb") as f:
                return parse_blacklist(f.read(MAX_BLACKLIST_BYTES + 1))
        except OSError as error:
            raise BlacklistError(str(error)) from None
    d = Agent(reactor, connectTimeout=FETCH_TIMEOUT).request(b"GET", url.encode())
    d.addTimeout(FETCH_TIMEOUT, reactor)
    try:
        response = await d
        if response.code != 200:
            raise BlacklistError(f"HTTP status {response.code}")
        finished = defer.Deferred()
        response.deliverBody(_BoundedBody(finished, MAX_BLACKLIST_BYTES))
        finished.addTimeout(FETCH_TIMEOUT, reactor)
        data = await finished
    except BlacklistError:
        raise
    except Exception as error:
        raise BlacklistError(f"{error.__class__.__name__}: {str(error)[:100]}") from None
    return parse_blacklist(data)
