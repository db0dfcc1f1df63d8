"""SIGHUP under twistd: reload what can change without a restart.

`systemctl reload` sends SIGHUP (see contrib/systemd/electrumx.service).
What it reloads is the TLS certificate and key; the banner files are read
at every request anyway, and twistd rotates its log file on SIGUSR1.
Without this handler SIGHUP would end the process.
"""

import signal

from twisted.application import service

from electrumx.logs import Logger

log = Logger()


class ReloadOnHangup(service.Service):
    """Calls `reload()` on the reactor thread at every SIGHUP, once the reactor runs."""

    def __init__(self, reactor, reload):
        self.reactor = reactor
        self.reload = reload

    def startService(self):
        super().startService()
        self.reactor.callWhenRunning(signal.signal, signal.SIGHUP, self._received)

    def _received(self, _number, _frame):
        log.info("received SIGHUP: reloading")
        self.reactor.callFromThread(self.reload)
