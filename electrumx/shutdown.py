"""How the server process ends: status 0 after a clean stop, 1 after a fatal error.

twistd stops the reactor on SIGTERM and SIGINT, but it remembers the signal
and, once everything has shut down, kills itself with it again: the process
ends "killed by SIGTERM" (status -15 to a parent, 143 in a shell) after
stopping cleanly, and neither systemd nor a script can tell that from a crash.
`StopOnSignals` takes both signals over once the reactor runs and stops the
reactor the way `electrumx-rpc stop` does, so twistd returns normally and the
process exits 0.

A fatal error is the other way out: `exit_after_shutdown` stops the reactor
(at once, or as soon as it runs when the error came during start-up, before
twistd started it) and ends the process with status 1 once every service has
stopped and the index is flushed.
"""

import os
import signal
import sys

from twisted.application import service
from twisted.internet import error

from electrumx.logs import Logger

log = Logger()


def stop_reactor(reactor):
    """Stop the reactor, unless it is stopping already (a second signal, say)."""
    try:
        reactor.stop()
    except error.ReactorNotRunning:
        pass


def exit_after_shutdown(reactor, status: int):
    """Stop the reactor as soon as it runs, and end the process with `status` once the
    shutdown is complete (twistd itself would exit 0)."""
    reactor.addSystemEventTrigger("after", "shutdown", _exit, status)
    reactor.callWhenRunning(stop_reactor, reactor)


def _exit(status: int):
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(status)


class StopOnSignals(service.Service):
    """Under twistd: SIGTERM and SIGINT stop the server cleanly, with exit status 0.

    Only twistd's process has this service; a server started inside another
    program (the tests) leaves that program's signals alone.  The handlers stay
    after the service stops, so that a second signal during the shutdown is
    ignored rather than reaching twistd's own handler.
    """

    def __init__(self, reactor):
        self.reactor = reactor

    def startService(self):
        super().startService()
        # The reactor installs its handlers as it starts; ours replace them after that.
        self.reactor.callWhenRunning(self._take_over_signals)

    def _take_over_signals(self):
        # Only where the reactor put its own handler: a SIGINT ignored from the start
        # (a background job) stays ignored, and `twistd --debug` keeps its debugger.
        for number, reactors_handler in ((signal.SIGTERM, self.reactor.sigTerm),
                                         (signal.SIGINT, self.reactor.sigInt)):
            if signal.getsignal(number) == reactors_handler:
                signal.signal(number, self._received)

    def _received(self, number, _frame):
        log.info("received {signal}, stopping", signal=signal.Signals(number).name)
        self.reactor.callFromThread(stop_reactor, self.reactor)
