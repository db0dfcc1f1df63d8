"""Fetching blocks ahead of the block processor, within a memory budget.

The prefetcher keeps asking the node for the blocks after the last one it has,
in batches sized from the average block so far, until the blocks waiting for
the processor fill the budget.  The processor takes whatever is ready with
`take_blocks`; when nothing is ready it waits on `wait_for_blocks`.  After a
reorg the indexer calls `reset`, which also discards any batch still on the
wire (its generation is stale).

A node that answers a fetch with an error (a block it no longer has, a
height above its tip: it restarted or reorganised between two calls, or it
is pruned) is asked again at the next poll; the trouble is logged as it
starts, now and then while it lasts, and as it ends.
"""

from twisted.internet import defer

from electrumx.index.daemon import DaemonAuthError, DaemonError
from electrumx.index.trouble_log import TroubleLog
from electrumx.logs import Logger


class Prefetcher:
    """Keeps a queue of raw blocks following a given height."""

    log = Logger()
    MAX_BATCH = 500
    PROBE_BATCH = 10
    """The first batch is small: block sizes are unknown until some have arrived."""
    MIN_AVG_BLOCK = 1_000
    BATCH_BYTES = 4 * 1024 * 1024
    """Raw bytes asked for in one request.  The reply is hex in JSON, decoded whole:
    a request of N raw bytes briefly costs about 5N of memory, so big requests,
    not the queue, would set the peak RSS of a sync."""

    def __init__(self, daemon, clock, budget_bytes: int, poll_interval: float):
        self.daemon = daemon
        self.clock = clock
        self.budget_bytes = budget_bytes
        self.poll_interval = poll_interval
        self.blocks = []
        self.queued_bytes = 0
        self.fetched_height = -1
        self.daemon_height = -1
        self.avg_block_size = None
        self.last_count = 0
        self._generation = 0
        self._waiters = []
        self._wakeup = None
        self._running = False
        self._trouble = TroubleLog(self.log, clock)

    # ---- consumer side ---------------------------------------------------

    def take_blocks(self):
        """All queued blocks, oldest first, as (height of the first, [raw blocks])."""
        blocks = self.blocks
        first = self.fetched_height - len(blocks) + 1
        self.blocks = []
        self.queued_bytes = 0
        self._poke()
        return first, blocks

    def wait_for_blocks(self):
        """A Deferred that fires when blocks are queued (at once if some are)."""
        d = defer.Deferred()
        if self.blocks:
            d.callback(None)
        else:
            self._waiters.append(d)
        return d

    def reset(self, height: int):
        """Forget everything queued or in flight and fetch again after `height`."""
        self._generation += 1
        self.blocks = []
        self.queued_bytes = 0
        self.fetched_height = height
        self._poke()

    def caught_up(self, height: int) -> bool:
        """True once `height` has reached the node's last known height."""
        return height >= self.daemon_height >= 0 and not self.blocks

    # ---- producer loop ---------------------------------------------------

    def start(self, height: int):
        self.fetched_height = height
        self._running = True
        return defer.ensureDeferred(self._main_loop())

    def stop(self):
        self._running = False
        self._poke()
        for d in self._waiters:
            d.callback(None)
        self._waiters = []

    def poke(self):
        """Look at the node again now (a new block was announced)."""
        self._poke()

    def _poke(self):
        if self._wakeup is not None and not self._wakeup.called:
            self._wakeup.callback(None)

    async def _main_loop(self):
        while self._running:
            fetched = await self._fetch_or_note_trouble()
            if not fetched and self._running:
                self._wakeup = defer.Deferred()
                call = self.clock.callLater(self.poll_interval, self._poke)
                await self._wakeup
                self._wakeup = None
                if call.active():
                    call.cancel()

    async def _fetch_or_note_trouble(self) -> bool:
        """`_fetch_some`, with the node's error answers logged and waited out."""
        try:
            fetched = await self._fetch_some()
        except DaemonAuthError:
            raise
        except DaemonError as e:
            self._trouble.goes_on("the node could not serve the blocks after height "
                                 "{height} ({error}); asking again at each poll",
                                 height=self.fetched_height, error=e)
            return False
        self._trouble.ended("the node serves blocks again, after {lasted}")
        return fetched

    async def _fetch_some(self) -> bool:
        """Fetch one batch if there is room and the node has more; True if it did."""
        generation = self._generation
        self.daemon_height = await self.daemon.height()
        if generation != self._generation:
            return True
        room = self.budget_bytes - self.queued_bytes
        missing = self.daemon_height - self.fetched_height
        if missing <= 0 or room <= 0:
            self._wake_consumers()      # let the indexer notice it is caught up
            return False
        count = self._batch_count(room, missing)
        first = self.fetched_height + 1
        hashes = await self.daemon.block_hashes(first, count)
        if generation != self._generation:
            return True
        blocks = await self.daemon.raw_blocks(hashes)
        if generation != self._generation:
            return True
        size = sum(len(b) for b in blocks)
        self.avg_block_size = max(self.MIN_AVG_BLOCK, size // max(1, len(blocks)))
        self.last_count = len(blocks)
        self.blocks.extend(blocks)
        self.queued_bytes += size
        self.fetched_height += len(blocks)
        self.log.debug("prefetched {count} blocks to height {height}",
                       count=len(blocks), height=self.fetched_height)
        self._wake_consumers()
        return True

    def _batch_count(self, room: int, missing: int) -> int:
        """How many blocks to ask for next.

        Sized from the average block so far, but never more than twice the
        last batch: blocks grow over a chain's life, and a count sized from
        small early blocks would otherwise ask for far more bytes than meant.
        """
        if self.avg_block_size is None:
            return min(self.PROBE_BATCH, missing)
        by_size = min(room, self.BATCH_BYTES) // self.avg_block_size
        return max(1, min(self.MAX_BATCH, missing, 2 * self.last_count, by_size))

    def _wake_consumers(self):
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)
