"""The certificate the ssl and wss listeners serve, reloaded without a restart.

Certificates from a public authority live 90 days or less and are renewed
in place (certbot rewrites the files behind the same paths).  Each new TLS
connection takes the context current when it arrives, so a reload changes
what new clients get while the sessions already open keep theirs.

A reload happens on SIGHUP (`systemctl reload`) and when the files change
(checked every `WATCH_SECS`).  A new pair that does not load (a half-written
file, a key of another certificate) is refused with one log line and the
certificate in use stays; the next change of the files tries again.
"""

import os

from OpenSSL import SSL
from twisted.application import internet
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from zope.interface import implementer

from electrumx.config.errors import ConfigError
from electrumx.config.tls import load_tls_context
from electrumx.logs import Logger
from electrumx.timers import timer_service

WATCH_SECS = 60.0
"""How often the certificate and key files are looked at: a stat of each, so cheap, and
a renewal is rarely urgent to the minute (SIGHUP reloads at once)."""


def file_stamp(*paths):
    """What changes when a file is replaced or rewritten: inode, size and mtime of each."""
    stamps = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            stamps.append(None)
        else:
            stamps.append((info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(stamps)


@implementer(IOpenSSLServerConnectionCreator)
class ReloadableTLS:
    """A TLS connection creator for listeners, whose certificate can be replaced live."""

    log = Logger()

    def __init__(self, certfile: str, keyfile: str, clock):
        self.certfile = certfile
        self.keyfile = keyfile
        self.clock = clock
        self._stamp = file_stamp(certfile, keyfile)
        self._context = load_tls_context(certfile, keyfile)
        self.reloads = 0
        self._watch: internet.TimerService | None = None

    def serverConnectionForTLS(self, tls_protocol):
        return SSL.Connection(self._context, None)

    def reload(self, reason: str) -> bool:
        """Load the files again; keep the current certificate if they do not load."""
        self._stamp = file_stamp(self.certfile, self.keyfile)
        try:
            context = load_tls_context(self.certfile, self.keyfile)
        except ConfigError as e:
            self.log.error("TLS certificate not reloaded ({reason}): {error}; still serving "
                           "the previous one", reason=reason, error=e)
            return False
        self._context = context
        self.reloads += 1
        self.log.info("TLS certificate reloaded ({reason}) from {certfile}", reason=reason,
                      certfile=self.certfile)
        return True

    def reload_if_changed(self):
        if file_stamp(self.certfile, self.keyfile) != self._stamp:
            self.reload("the files changed")

    def start_watching(self, interval: float = WATCH_SECS):
        self._watch = watch = timer_service(self.clock, interval, self.reload_if_changed)
        watch.startService()

    def stop_watching(self):
        if self._watch is not None and self._watch.running:
            self._watch.stopService()
