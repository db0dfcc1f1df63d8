"""The HTTP side of the ws and wss listeners: connections that must upgrade in time.

A WebSocket client first sends an HTTP upgrade request.  Twisted's Site
closes a connection only after 60 s without a byte, and every byte starts
that clock again, so a client sending its request a byte a minute would
keep its socket for days.  Here the clock starts when the connection is
accepted and only the upgrade stops it: a connection that has not become a
WebSocket within HANDSHAKE_TIMEOUT is dropped.  Under wss the HTTP
connection begins before the TLS handshake, so that is timed too.
"""

from twisted.web import http
from twisted.web.server import NOT_DONE_YET
from twisted.web.websocket import WebSocketResource

from electrumx.listener import QuietSite
from electrumx.protocol.deadline import Deadline


class UpgradeChannel(http.HTTPChannel):
    """An HTTP connection that is dropped unless it upgrades within the site's timeout."""

    upgrade_deadline = None

    def connectionMade(self):
        super().connectionMade()
        site = self.site
        self.upgrade_deadline = Deadline(site.clock, site.upgrade_timeout, self._not_upgraded)
        self.upgrade_deadline.start()

    def upgraded(self):
        self.upgrade_deadline.stop()

    def _not_upgraded(self):
        self.site.stats.timed_out["handshake"] += 1
        self.transport.abortConnection()

    def connectionLost(self, reason):
        # Reached only before an upgrade: the WebSocket takes the connection's end over.
        self.upgrade_deadline.stop()
        super().connectionLost(reason)


class UpgradeResource(WebSocketResource):
    """Twisted's WebSocket resource at every path, telling the channel when it upgraded."""

    isLeaf = True           # clients connect to any path, "/" included

    def render_GET(self, request):
        result = super().render_GET(request)
        if result is NOT_DONE_YET:
            request.channel.upgraded()
        return result


class WebSocketSite(QuietSite):
    """Serves WebSocket sessions made by `factory`; see the module docstring."""

    # Twisted's annotation admits only its HTTP/1.1-or-2 wrapper; WebSocket is HTTP/1.1.
    protocol = UpgradeChannel  # type: ignore[assignment]

    def __init__(self, factory, clock, upgrade_timeout: float, stats):
        super().__init__(UpgradeResource(factory), reactor=clock)
        self.clock = clock
        self.upgrade_timeout = upgrade_timeout
        self.stats = stats
