"""Fetching blocks ahead of the block processor, within a memory budget.

The prefetcher keeps asking the node for the blocks after the last one it has,
in batches sized from the average block so far, until the blocks waiting for
the processor fill the budget.  The processor takes whatever is ready with
`take_blocks`; when nothing is ready it waits on `wait_for_blocks`.  After a
reorg the indexer calls `reset`, which also discards any batch still on the
wire (it was asked for the old heights).

Its life is a small state machine: idle until started; fetching (a request
is on the wire); fetching_stale (a reset came meanwhile: the answer will be
dropped and the fetch made again); sleeping until the next poll or a poke
(the node had nothing new, the queue was full, or the node answered an
error); stopped; and failed, when a fetch failed in a way no retry mends
(the node refused our credentials, or a bug of ours), which the Deferred
`start` returned reports.

A node that answers a fetch with an error (a block it no longer has, a
height above its tip: it restarted or reorganised between two calls, or it
is pruned) is asked again at the next poll; the trouble is logged as it
starts, now and then while it lasts, and as it ends.
"""

from typing import Protocol

from automat import TypeMachineBuilder
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from electrumx.index.daemon import DaemonAuthError, DaemonError
from electrumx.index.trouble_log import TroubleLog
from electrumx.logs import Logger


class Prefetcher:
    """Keeps a queue of raw blocks following a given height."""

    log = Logger()
    MAX_BATCH = 500
    PROBE_BATCH = 10
    """The first batch is small: block sizes are unknown until some have arrived."""
    MIN_BLOCK_SIZE = 1_000
    BATCH_BYTES = 2 * 1024 * 1024
    """Raw bytes asked for in one request.  The reply is hex in JSON, decoded whole in
    one reactor turn (about 15 ms for 2 MB; a 19 MB reply took 60 ms to parse alone)
    and briefly costing about 5N of memory for N raw bytes: big requests, not the
    queue, would set a sync's longest stalls and its peak RSS."""

    def __init__(self, daemon, clock, budget_bytes: int, poll_interval: float):
        self.daemon = daemon
        self.clock = clock
        self.budget_bytes = budget_bytes
        self.poll_interval = poll_interval
        self.blocks: list[bytes] = []
        self.queued_bytes = 0
        self.fetched_height = -1
        self.daemon_height = -1
        self.block_size = None
        """The largest block of the last batch, which sizes the next: while blocks grow
        along a chain, the last batch's average would ask for several times
        BATCH_BYTES."""
        self.last_count = 0
        self._waiters: list[defer.Deferred] = []
        self._done: defer.Deferred = defer.Deferred()
        self._trouble = TroubleLog(self.log, clock)
        self._lifecycle = _new_lifecycle(self)

    # ---- consumer side ---------------------------------------------------

    def take_blocks(self):
        """All queued blocks, oldest first, as (height of the first, [raw blocks])."""
        blocks = self.blocks
        first = self.fetched_height - len(blocks) + 1
        self.blocks = []
        self.queued_bytes = 0
        if blocks:
            self._lifecycle.poke()          # there is room again
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
        self.blocks = []
        self.queued_bytes = 0
        self.fetched_height = height
        self._lifecycle.reset()

    def caught_up(self, height: int) -> bool:
        """True once `height` has reached the node's last known height."""
        return height >= self.daemon_height >= 0 and not self.blocks

    # ---- producer --------------------------------------------------------

    def start(self, height: int):
        """Fetch the blocks after `height`; a Deferred that fails if fetching cannot go on
        (the node refused our credentials, or a bug) and fires once stopped."""
        self.fetched_height = height
        self._lifecycle.start()
        return self._done

    def stop(self):
        self._lifecycle.stop()

    def poke(self):
        """Look at the node again now (a new block was announced)."""
        self._lifecycle.poke()

    def _fetch(self):
        d = defer.ensureDeferred(self._fetch_some())
        d.addCallbacks(self._answered, self._fetch_failed)

    async def _fetch_some(self):
        """The raw blocks of the next batch: none if the node has no more or the queue
        no room."""
        self.daemon_height = await self.daemon.height()
        room = self.budget_bytes - self.queued_bytes
        missing = self.daemon_height - self.fetched_height
        if missing <= 0 or room <= 0:
            return []
        count = self._batch_count(room, missing)
        hashes = await self.daemon.block_hashes(self.fetched_height + 1, count)
        return await self.daemon.raw_blocks(hashes)

    def _answered(self, blocks):
        self._trouble.ended("the node serves blocks again, after {lasted}")
        if blocks:
            self._lifecycle.fetched(blocks)
        else:
            self._lifecycle.nothing_to_fetch()

    def _fetch_failed(self, failure):
        """The node's error answers are waited out; a refusal of our credentials, or
        anything else, is not."""
        if failure.check(DaemonError) and not failure.check(DaemonAuthError):
            self._lifecycle.node_error(failure.value)
        else:
            self._lifecycle.fetch_failed(failure)

    def _queue(self, blocks):
        size = sum(len(b) for b in blocks)
        self.block_size = max(self.MIN_BLOCK_SIZE, max(len(b) for b in blocks))
        self.last_count = len(blocks)
        self.blocks.extend(blocks)
        self.queued_bytes += size
        self.fetched_height += len(blocks)
        self.log.debug("prefetched {count} blocks to height {height}",
                       count=len(blocks), height=self.fetched_height)

    def _note_trouble(self, error):
        self._trouble.goes_on("the node could not serve the blocks after height "
                              "{height} ({error}); asking again at each poll",
                              height=self.fetched_height, error=error)

    def _batch_count(self, room: int, missing: int) -> int:
        """How many blocks to ask for next.

        Sized from the last batch's largest block, but never more than twice the
        last batch: blocks grow over a chain's life, and a count sized from
        small early blocks would otherwise ask for far more bytes than meant.
        """
        if self.block_size is None:
            return min(self.PROBE_BATCH, missing)
        by_size = min(room, self.BATCH_BYTES) // self.block_size
        return max(1, min(self.MAX_BATCH, missing, 2 * self.last_count, by_size))

    def _wake_consumers(self):
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)


class PrefetcherLifecycle(Protocol):
    """The events of a prefetcher's life (see the module's docstring)."""

    def start(self) -> None:
        """Begin fetching."""

    def fetched(self, blocks: list) -> None:
        """A fetch came back with blocks."""

    def nothing_to_fetch(self) -> None:
        """A fetch found that the node has no more blocks, or the queue no room."""

    def node_error(self, error: DaemonError) -> None:
        """The node answered a fetch with an error: asked again at the next poll."""

    def fetch_failed(self, failure: Failure) -> None:
        """A fetch failed in a way no retry mends."""

    def poke(self) -> None:
        """Look at the node now: the poll is due, a block was announced, or the
        consumer made room."""

    def reset(self) -> None:
        """The consumer moved to another height: a fetch on the wire is stale."""

    def stop(self) -> None:
        """Fetch no more, and let the consumer go."""


def _poll_timer(lifecycle: PrefetcherLifecycle, prefetcher: Prefetcher, *_why) -> IDelayedCall:
    """Sleeping's data: the call that pokes once the poll interval is over."""
    return prefetcher.clock.callLater(prefetcher.poll_interval, lifecycle.poke)


def _build_lifecycle():
    builder = TypeMachineBuilder(PrefetcherLifecycle, Prefetcher)
    idle = builder.state("idle")
    fetching = builder.state("fetching")
    fetching_stale = builder.state("fetching_stale")
    sleeping = builder.state("sleeping", _poll_timer)
    stopped = builder.state("stopped")
    failed = builder.state("failed")
    Events = PrefetcherLifecycle

    @idle.upon(Events.start).to(fetching)
    @fetching_stale.upon(Events.fetched).to(fetching)       # the answer is dropped
    @fetching_stale.upon(Events.nothing_to_fetch).to(fetching)
    def fetch(lifecycle, prefetcher, *_dropped) -> None:
        prefetcher._fetch()

    @fetching.upon(Events.fetched).loop()
    def queue_and_fetch_more(lifecycle, prefetcher, blocks) -> None:
        prefetcher._queue(blocks)
        prefetcher._fetch()
        prefetcher._wake_consumers()

    @fetching.upon(Events.nothing_to_fetch).to(sleeping)
    def let_the_consumer_see(lifecycle, prefetcher) -> None:
        prefetcher._wake_consumers()        # the indexer may be caught up

    @fetching.upon(Events.node_error).to(sleeping)
    @fetching_stale.upon(Events.node_error).to(sleeping)
    def note_trouble(lifecycle, prefetcher, error) -> None:
        prefetcher._note_trouble(error)

    @fetching.upon(Events.fetch_failed).to(failed)
    @fetching_stale.upon(Events.fetch_failed).to(failed)
    def fail(lifecycle, prefetcher, failure) -> None:
        prefetcher._done.errback(failure)

    @sleeping.upon(Events.poke).to(fetching)
    @sleeping.upon(Events.reset).to(fetching)
    def wake_up(lifecycle, prefetcher, poll: IDelayedCall) -> None:
        if poll.active():
            poll.cancel()
        prefetcher._fetch()

    fetching.upon(Events.reset).to(fetching_stale).returns(None)

    @idle.upon(Events.stop).to(stopped)
    @fetching.upon(Events.stop).to(stopped)
    @fetching_stale.upon(Events.stop).to(stopped)
    @failed.upon(Events.stop).to(stopped)
    def stop(lifecycle, prefetcher) -> None:
        if not prefetcher._done.called:
            prefetcher._done.callback(None)
        prefetcher._wake_consumers()

    @sleeping.upon(Events.stop).to(stopped)
    def stop_sleeping(lifecycle, prefetcher, poll: IDelayedCall) -> None:
        if poll.active():
            poll.cancel()
        stop(lifecycle, prefetcher)

    for state in (idle, fetching, fetching_stale, failed, stopped):
        state.upon(Events.poke).loop().returns(None)
    for state in (idle, fetching_stale, failed, stopped):
        state.upon(Events.reset).loop().returns(None)
    for event in (Events.fetched, Events.nothing_to_fetch, Events.node_error,
                  Events.fetch_failed, Events.stop):
        stopped.upon(event).loop().returns(None)     # a fetch still on the wire at the stop
    return builder.build()


_new_lifecycle = _build_lifecycle()
