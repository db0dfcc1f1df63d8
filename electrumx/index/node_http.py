"""One JSON-RPC POST to a node over Twisted's HTTP client, bounded in time and size.

The node client (`electrumx.index.daemon`) decides what to ask and what a
reply means; this module only carries a request there and its reply back,
and says `NodeUnavailable` when no reply came: the node refused or dropped
the connection, was silent past the timeout, or sent more than the limit.
"""

import base64

from twisted.internet import defer, error, protocol
from twisted.web.client import (RequestNotSent, RequestTransmissionFailed, ResponseDone,
                                ResponseFailed)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from electrumx.index.node_replies import NodeUnavailable

_TRANSPORT_FAILURES = (error.ConnectError, error.ConnectionClosed, error.DNSLookupError,
                      defer.TimeoutError, RequestNotSent, RequestTransmissionFailed,
                      ResponseFailed)
"""How a request to a node that is down, dying or silent fails.  `error.ConnectError`
covers refused, unroutable and timed-out connections; `ResponseFailed`, a reply cut
short.  A cancelled request is not among them: cancelling stops the retries."""


async def post(agent, clock, url: bytes, userinfo: bytes, body: bytes, *, timeout: float,
               limit: int):
    """(HTTP status, reply bytes) of POSTing the JSON `body` to `url` with basic auth
    `userinfo`; NodeUnavailable if no reply came within `timeout` or under `limit` bytes."""
    headers = Headers({
        b"Content-Type": [b"application/json"],
        b"Authorization": [b"Basic " + base64.b64encode(userinfo)],
    })
    try:
        d = _cancellable(agent.request(b"POST", url, headers, _Body(body)))
        d.addTimeout(timeout, clock)
        response = await d
        reader = _BodyReader(limit)
        response.deliverBody(reader)
        reader.finished.addTimeout(timeout, clock)
        data = await reader.finished
    except _TRANSPORT_FAILURES as e:
        raise NodeUnavailable(_describe(e)) from None
    return response.code, data


def _cancellable(request):
    """`request` (an Agent's Deferred) such that cancelling it fails it with CancelledError.

    The Agent reports a request cancelled while connecting or waiting as
    ConnectingCancelledError, DNSLookupError or ResponseNeverReceived, any
    of which would pass for a node outage and be retried.  As
    CancelledError, `addTimeout` turns it into TimeoutError when the
    timeout did it, and anyone else's cancel ends the request.
    """
    def cancel(outer):
        outer.errback(defer.CancelledError())
        request.cancel()

    def passed_on(fire):
        def pass_on(result):
            if not outer.called:        # a cancelled request's own report is dropped
                fire(result)
        return pass_on

    outer = defer.Deferred(cancel)
    request.addCallbacks(passed_on(outer.callback), passed_on(outer.errback))
    return outer


@implementer(IBodyProducer)
class _Body:
    """A request body that is all there at once: written whole, nothing to pause."""

    def __init__(self, data: bytes):
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class _BodyReader(protocol.Protocol):
    """Collects a response body into `finished`; closes the connection past `limit`
    bytes, or when `finished` is cancelled (the reply is taking too long)."""

    def __init__(self, limit):
        self.finished = defer.Deferred(self._cancel)
        self.limit = limit
        self.chunks = []
        self.size = 0

    def dataReceived(self, data):
        if self.finished.called:        # over the limit or too late: drop the rest
            return
        self.size += len(data)
        if self.size > self.limit:
            self._stop(NodeUnavailable(f"a reply over {self.limit:,d} bytes"))
            return
        self.chunks.append(data)

    def _cancel(self, _finished):
        self._stop(defer.CancelledError())

    def _stop(self, reason):
        """Fail `finished` with `reason`, then close: closing may report a lost
        connection at once, which must not take the place of the reason."""
        self.chunks = []
        self.finished.errback(reason)
        if self.transport is not None:
            self.transport.stopProducing()

    def connectionLost(self, reason):
        if self.finished.called:
            return
        if reason.check(error.ConnectionDone, ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(reason)


def _describe(exc) -> str:
    """A short reason for a log line; Twisted's reprs may quote the URL."""
    if isinstance(exc, ResponseFailed):
        return "connection lost mid-reply"
    if isinstance(exc, (error.TimeoutError, defer.TimeoutError)):
        return "timed out"
    if isinstance(exc, error.ConnectionRefusedError):
        return "connection refused"
    return type(exc).__name__
