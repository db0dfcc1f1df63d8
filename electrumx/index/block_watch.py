"""Hearing of new blocks at once: a long-poll on the node's `waitfornewblock`.

Polling `getblockcount` every DAEMON_POLL_INTERVAL_BLOCKS puts up to that
long between a block and the notifications it causes.  bitcoind's
`waitfornewblock` answers as soon as its tip changes, so one such request is
kept waiting on the node all the time, and when it comes back with a new tip
the prefetcher looks at once.  Polling stays as the fallback: for nodes
without the call (one warning, then the watcher stops) and while the node
cannot be reached.
"""

from twisted.internet import defer, task

from electrumx.index.node_replies import METHOD_NOT_FOUND
from electrumx.interfaces import DaemonError
from electrumx.logs import Logger


class BlockWatcher:
    """Calls `on_new_block()` whenever the node's tip changes."""

    log = Logger()
    LONG_POLL_MS = 30_000
    RETRY_SECS = 5.0

    def __init__(self, daemon, clock, on_new_block):
        self.daemon = daemon
        self.clock = clock
        self.on_new_block = on_new_block
        self._running = False
        self._pending = None
        self._last_tip = None

    def start(self):
        self._running = True
        d = defer.ensureDeferred(self._loop())
        d.addErrback(lambda f: self.log.failure("block watcher stopped", f))
        return d

    def stop(self):
        self._running = False
        if self._pending is not None:
            self._pending.cancel()

    async def _loop(self):
        while self._running:
            self._pending = self.daemon.call_once("waitfornewblock", self.LONG_POLL_MS)
            try:
                tip = await self._pending
            except defer.CancelledError:
                return
            except DaemonError as e:
                if e.code == METHOD_NOT_FOUND:
                    self.log.warn("the node has no waitfornewblock: new blocks are seen "
                                  "by polling alone")
                    return
                if self._running:
                    await task.deferLater(self.clock, self.RETRY_SECS, lambda: None)
                continue
            finally:
                self._pending = None
            tip_hash = tip.get("hash") if isinstance(tip, dict) else None
            if self._running and tip_hash != self._last_tip:
                self._last_tip = tip_hash
                self.on_new_block()
