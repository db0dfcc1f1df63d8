"""One listening endpoint as a Twisted service: listens while running, logs where.

Every listener of the server (Electrum sessions, the admin RPC, metrics)
comes from an endpoint description string, so TCP, TLS, UNIX sockets and
Tor onion endpoints all take this same path.
"""

from twisted.application import service
from twisted.web import server

from electrumx.logs import Logger


class Listener(service.Service):
    """Listens on `endpoint` with `factory`; `label` names it in the log.

    `on_listening(port)` and `on_stopping(port)` let an owner track its
    ports (the session manager pauses them at MAX_SESSIONS).
    """

    log = Logger()

    def __init__(self, endpoint, factory, label, on_listening=None, on_stopping=None):
        self.endpoint = endpoint
        self.factory = factory
        self.label = label
        self.on_listening = on_listening
        self.on_stopping = on_stopping
        self.port = None

    def startService(self):
        super().startService()
        d = self.endpoint.listen(self.factory)
        d.addCallback(self._listening)
        d.addErrback(lambda f: self.log.critical("cannot listen for {label}: {error}",
                                                 label=self.label, error=f.value))

    def _listening(self, port):
        self.port = port
        self.log.info("serving {label} on {address}", label=self.label,
                      address=port.getHost())
        if self.on_listening is not None:
            self.on_listening(port)

    def stopService(self):
        super().stopService()
        if self.port is None:
            return None
        if self.on_stopping is not None:
            self.on_stopping(self.port)
        return self.port.stopListening()


class QuietSite(server.Site):
    """An HTTP site without an access-log line per request (WebSocket, metrics)."""

    noisy = False

    def log(self, request):
        pass
