"""The metrics port's site: the status page at `/`, its figures as JSON at `/stats`,
and the Prometheus text at `/metrics`.

Each answer is built when asked, from counters the server keeps anyway, and
its size does not grow with the number of clients or peers (see
`electrumx.admin.status`).  Like the admin RPC, the port listens on loopback
unless METRICS_HOST says otherwise: the page names clients and peers.
"""

import json

from twisted.web import pages, resource

from electrumx.admin.metrics import MetricsResource
from electrumx.admin.status import RequestRates, status_report
from electrumx.admin.status_page import SECURITY_HEADERS, render_status_page


class _StatusResource(resource.Resource):
    """A view of `status_report`, built afresh at each request."""

    isLeaf = True

    def __init__(self, controller, rates):
        super().__init__()
        self.controller = controller
        self.rates = rates

    def report(self):
        return status_report(self.controller, self.rates)


class StatusPage(_StatusResource):
    """`/`: the status page (HTML)."""

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        page = render_status_page(self.report())
        # A client name may hold a lone surrogate, which UTF-8 cannot carry.
        return page.encode("utf-8", "replace")


class StatsJSON(_StatusResource):
    """`/stats`: the status page's figures as JSON."""

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        # json escapes whatever a client sent (ASCII out, lone surrogates too).
        return json.dumps(self.report()).encode()


class _Root(resource.Resource):
    """The site's root: its children, and a plain 404 for any other path."""

    def getChild(self, path, request):
        return pages.notFound()


def monitoring_site_root(controller) -> resource.Resource:
    """The resource tree of the metrics port."""
    rates = RequestRates(controller.reactor, controller.sessions.stats)
    root = _Root()
    root.putChild(b"", StatusPage(controller, rates))
    root.putChild(b"stats", StatsJSON(controller, rates))
    root.putChild(b"metrics", MetricsResource(controller))
    return root
