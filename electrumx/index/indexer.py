"""The indexer service: keeps the index in step with the node, and says what changed.

It wires the daemon client, the prefetcher, the block processor and the
mempool together: blocks are applied as the prefetcher delivers them, reorgs
are detected and backed out, the cache is flushed by size during initial sync
and after every block once caught up, and the mempool is refreshed when the
index has caught up with the node.  After every flush and every mempool
refresh, listeners get one event with the scripts touched and the new height.

A node below the index's height (it restarted without its last blocks, it
reindexes from genesis, or it is another node after a failover) counts as
caught up: clients are served from the index while the node is waited for,
and once it is back at our height the block it has there is compared with
ours, and a different one means a reorg onto the node's chain.  What stops
the server is a node that refuses our credentials or serves another network,
or a chain that contradicts the index beyond its undo data.

The indexer's life (starting, syncing, caught_up, waiting_for_node, stopped)
and its mempool refreshes are small state machines, in `indexer_lifecycle`;
`state` names where the indexer is.
"""

import time
from collections import deque
from dataclasses import dataclass

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import LogLevel

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.block_watch import BlockWatcher
from electrumx.index.daemon import DaemonAuthError, DaemonError, DaemonMismatchError
from electrumx.index.db import ChainError, DBError
from electrumx.index.indexer_lifecycle import (CAUGHT_UP, STARTING, WAITING_FOR_NODE,
                                               new_lifecycle, new_mempool_refresh)
from electrumx.index.prefetcher import Prefetcher
from electrumx.index.trouble_log import TroubleLog, format_secs
from electrumx.logs import Logger
from electrumx.observer import Listeners, OneShotObserver
from electrumx.timers import timer_service


class Indexer(service.MultiService):
    """Follows the node's best chain into the index; a Twisted service."""

    log = Logger()
    PROGRESS_SECS = 10.0
    YIELD_SECS = 0.01
    """Longest stretch of block processing before other reactor work gets a turn.  A
    client's request takes two or three turns (read, reply, and accept for a new
    connection), so this bounds its wait during a sync to a few times this."""
    PREFETCH_BYTES = 32 * 1024 * 1024
    """Raw blocks fetched ahead of processing.  A few requests' worth keeps the
    node and the processor both busy; more only raises the sync's peak memory."""

    def __init__(self, db, daemon, mempool, clock, *, cache_mb: int, reorg_limit: int,
                 block_poll_secs: float, mempool_poll_secs: float, on_fatal):
        super().__init__()
        self.setName("indexer")
        self.db = db
        self.daemon = daemon
        self.mempool = mempool
        self.clock = clock
        self.cache_bytes = cache_mb * 1024 * 1024
        self.reorg_limit = reorg_limit
        self.on_fatal = on_fatal
        self.processor: BlockProcessor | None = None
        self.prefetcher = Prefetcher(daemon, clock, budget_bytes=self.PREFETCH_BYTES,
                                     poll_interval=block_poll_secs)
        self.block_watcher = BlockWatcher(daemon, clock, self.prefetcher.poke)
        self.listeners = Listeners(self.log, "index change")
        self._caught_up = OneShotObserver()
        self.state = STARTING
        """Where the indexer is in its life; only its lifecycle machine changes it."""
        self._behind = TroubleLog(self.log, clock)
        self._node_trouble = TroubleLog(self.log, clock)
        self._lifecycle = new_lifecycle(self)
        self._mempool_refresh = new_mempool_refresh(self)
        self._progress = timer_service(clock, self.PROGRESS_SECS, self._log_progress)
        self._progress.setServiceParent(self)       # until caught up
        self._mempool_timer = timer_service(clock, mempool_poll_secs, self._mempool_refresh.due)
        """Joins the service once caught up."""
        self.timings = IndexTimings()

    @property
    def is_caught_up(self) -> bool:
        """Whether the index has caught up with the node (and clients are served)."""
        return self.state in (CAUGHT_UP, WAITING_FOR_NODE)

    @property
    def node_behind(self) -> bool:
        """The node's best chain lacks our tip: it is below our height, waited for."""
        return self.state == WAITING_FOR_NODE

    # ---- service ---------------------------------------------------------

    def startService(self):
        super().startService()
        d = defer.ensureDeferred(self._run())
        d.addErrback(self._fatal)

    def stopService(self):
        # The timers stop with it (a parent stops its children whether they started
        # or not, and a TimerService that never started cannot stop).
        d = super().stopService() if self.running else None
        self._lifecycle.stop()
        self._mempool_refresh.stop()
        return d

    def _shut_down(self, first_sync: bool):
        """Stop fetching, write what the cache holds, and close the index."""
        self.prefetcher.stop()
        self.block_watcher.stop()
        if self.processor is not None:
            try:
                self.processor.flush(first_sync=first_sync)
            except Exception as e:     # the index stays at the last good flush
                self.log.error("final flush failed: {error}", error=e)
        self.db.close()

    def _fatal(self, failure):
        self._lifecycle.failed(failure)

    def _report_fatal(self, failure):
        # on_fatal says why in one line.  An index, a chain or a node that cannot go on
        # (wrong credentials, another network) needs no more; anything else is a bug,
        # whose traceback is there at LOG_LEVEL=debug.
        if not failure.check(ChainError, DBError, DaemonAuthError, DaemonMismatchError):
            self.log.failure("indexer stopped", failure, level=LogLevel.debug)
        self.on_fatal(str(failure.value))

    def when_caught_up(self):
        """A Deferred of the height the index first caught up with the node at (fired
        already if it has); each caller gets a Deferred of its own."""
        return self._caught_up.when_fired()

    def add_listener(self, callback):
        """callback(touched_hashXs: set, height: int) after each block flush or mempool refresh."""
        self.listeners.add(callback)

    def _notify(self, touched):
        self.listeners.tell(touched, self.db.height)

    # ---- main loop -------------------------------------------------------

    async def _run(self):
        self.db.open()
        self.log.info("index at {state}", state=self.db.describe())
        await self.daemon.check_network(self.db.coin)
        lookup = await self.daemon.probe_tx_lookup()
        self.log.info("confirmed transactions are fetched with {how}", how=lookup.describe())
        self._lifecycle.node_checked()
        while self.running:
            await self.prefetcher.wait_for_blocks()
            if not self.running:
                break
            try:
                await self._follow_node()
            except DaemonAuthError:
                raise
            except DaemonError as e:
                # The node's chain moved under a reorg's search (it restarted, or
                # reorganised again): fetch from our tip afresh and look again.
                self._node_trouble.goes_on("the node's answers do not add up ({error}); "
                                           "fetching again from height {height}",
                                           error=e, height=self.db.height)
                self.prefetcher.reset(self.db.height)
            else:
                self._node_trouble.ended("the node's answers add up again, after {lasted}")

    async def _follow_node(self):
        """Apply what the prefetcher has; once the node has no more, check it holds our tip."""
        _first, blocks = self.prefetcher.take_blocks()
        if blocks:
            await self._apply(blocks)
        # Checked after applying too: the prefetcher may have found the node
        # has nothing more while we were busy, and it says so only once.
        if self.prefetcher.caught_up(self.processor.height) and self.running:
            if not self.is_caught_up:
                # The sync's last flush, often its biggest: in steps, before clients come.
                await self._flush_in_steps()
                if not self.running:
                    return
            await self._check_node_holds_our_tip()
            if self.prefetcher.caught_up(self.processor.height):
                self._lifecycle.caught_up()
            if self.is_caught_up:
                # Not from within the transition: a waiter may call the indexer at once,
                # and a state machine defers what it is asked from within a transition.
                self._caught_up.fire(self.db.height)

    def _start_syncing(self):
        self.processor = BlockProcessor(self.db, self.reorg_limit)
        self.prefetcher.start(self.db.height).addErrback(self._fatal)
        self._sync_start = (time.monotonic(), self.db.height, self.db.state.tx_count)

    async def _apply(self, blocks):
        processor = self.processor
        deadline = time.monotonic() + self.YIELD_SECS
        for raw in blocks:
            if raw[4:36] != processor.tip and processor.height >= 0:
                await self._reorg()
                return
            processor.undo_from_height = self.prefetcher.daemon_height - self.reorg_limit + 1
            # In steps, with reactor turns between them: a block of thousands of
            # transactions takes longer than clients, the admin RPC and the metrics
            # may wait.  Only the time spent on the block is timed.
            busy = 0.0
            started = time.monotonic()
            txs_before = processor.tx_count
            for _ in processor.advance_block_steps(raw):
                now = time.monotonic()
                if now >= deadline:
                    busy += now - started
                    await task.deferLater(self.clock, 0, lambda: None)
                    started = time.monotonic()
                    deadline = started + self.YIELD_SECS
                    if not self.running:
                        return      # the shutdown's flush finishes the block
            applied = busy + time.monotonic() - started
            self.timings.blocks.add(applied)
            block = BlockTiming(processor.height, processor.tip, processor.tx_count - txs_before,
                                len(raw), applied, time.time())
            self.timings.recent_blocks.append(block)
            if self.is_caught_up:
                started = time.monotonic()
                self._flush_and_notify()
                block.flush_and_notify_secs = time.monotonic() - started
            elif processor.cache_bytes() >= self.cache_bytes:
                await self._flush_in_steps()
                deadline = time.monotonic() + self.YIELD_SECS
                if not self.running:
                    return
            else:
                processor.write_ahead_if_due()
            if time.monotonic() >= deadline:
                await task.deferLater(self.clock, 0, lambda: None)
                deadline = time.monotonic() + self.YIELD_SECS
                if not self.running:
                    return

    def flush(self):
        """Write the cache to the index now (also the admin `flush` command); seconds taken."""
        started = time.monotonic()
        self.processor.flush(first_sync=not self.is_caught_up)
        secs = time.monotonic() - started
        self.timings.flushes.add(secs)
        self.timings.note_stall(secs)
        return secs

    async def _flush_in_steps(self):
        """Flush the sync's cache in steps (`BlockProcessor.flush_steps`), giving the
        reactor a turn whenever a stretch of steps has taken YIELD_SECS."""
        processor = self.processor
        started = time.monotonic()
        stretch = started
        for _ in processor.flush_steps(first_sync=not self.is_caught_up):
            now = time.monotonic()
            if now - stretch >= self.YIELD_SECS:
                self.timings.note_stall(now - stretch)
                await task.deferLater(self.clock, 0, lambda: None)
                stretch = time.monotonic()
        now = time.monotonic()
        self.timings.note_stall(now - stretch)
        if processor.height != self.db.height:
            return          # overtaken by another flush, or by the shutdown
        secs = now - started
        self.timings.flushes.add(secs)
        self.log.info("flushed to height {height} in {secs:.2f}s", height=self.db.height,
                      secs=secs)

    def _flush_and_notify(self):
        touched = self.processor.touched_scripts()
        mined = self.processor.pending_txids()
        self.flush()
        if self.mempool is not None:
            touched |= self.mempool.on_block(mined)
        self._notify(touched)
        self.log.info("block {height} {hash}", height=self.db.height,
                      hash=hash_to_hex_str(self.db.tip))
        self.poke_mempool()

    def _serve(self):
        """The index has caught up: flush block by block from now on, and refresh the
        mempool."""
        self.processor.flush(first_sync=False)
        self._progress.disownServiceParent()
        self.log.info("caught up to height {height}", height=self.db.height)
        self.block_watcher.start()
        self._notify(set())
        if self.mempool is not None:
            self._mempool_timer.setServiceParent(self)      # a refresh at once

    # ---- mempool ---------------------------------------------------------

    def poke_mempool(self):
        """Refresh the mempool soon (after a block or an announced transaction), and the
        next time a whole poll interval after that."""
        if self._mempool_timer.running:
            self.clock.callLater(0, self._restart_mempool_timer)

    def mempool_announced(self):
        """The node announced a mempool change (ZMQ): refresh now, coalesced with a refresh
        under way.  Before the index has caught up there is no mempool to refresh."""
        if self._mempool_timer.running:
            self._mempool_refresh.announced()

    def block_announced(self):
        """The node announced a block (ZMQ): look for it now, not at the next poll."""
        self.prefetcher.poke()

    def _restart_mempool_timer(self):
        if self._mempool_timer.running:          # not stopped meanwhile
            self._mempool_timer.stopService()
            self._mempool_timer.startService()

    def _refresh_mempool(self):
        d = defer.ensureDeferred(self._refresh_mempool_async())
        d.addCallbacks(lambda _: self._mempool_refresh.refreshed(),
                       self._mempool_refresh.failed)

    def _refresh_failed(self, failure):
        self.log.failure("mempool refresh failed", failure)

    async def _refresh_mempool_async(self):
        height = self.db.height
        if height != self.prefetcher.daemon_height or self.prefetcher.blocks:
            return      # not in step with the node: blocks first
        touched = await self.mempool.refresh()
        if self.mempool.node_ahead:
            self.prefetcher.poke()          # a block we have not polled for yet: fetch it now
        if touched and self.db.height == height:
            self._notify(touched)

    # ---- reorgs ----------------------------------------------------------

    async def _check_node_holds_our_tip(self):
        """The node has no block above ours: see that its best chain holds our tip.

        At our height, its block there must be ours, or we reorg onto its
        chain.  Below our height, a node that knows our tip as stale
        (invalidateblock) means a reorg now; one that does not know it at all
        (restarted, reindexing, another node) is waited for.
        """
        height, node_height = self.db.height, self.prefetcher.daemon_height
        if height <= 0:
            return
        tip = hash_to_hex_str(self.db.tip)
        try:
            if node_height >= height:
                ours_replaced = await self.daemon.block_hash(height) != tip
            else:
                info = await self.daemon.call("getblockheader", tip, True)
                ours_replaced = isinstance(info, dict) and info.get("confirmations", 0) < 0
        except DaemonAuthError:
            raise
        except DaemonError:             # no such block, or height: the node is below us
            self._lifecycle.node_behind(node_height)
            return
        if ours_replaced:
            await self._reorg()
        else:
            self._lifecycle.node_holds_our_tip()

    def _note_node_behind(self, node_height: int):
        self._behind.goes_on("the node is at height {node_height}, below the index's "
                             "{height} (restarted, reindexing, or another node): serving "
                             "from the index until the node is back",
                             node_height=node_height, height=self.db.height)

    def _note_node_back(self):
        self._behind.ended("the node is back at the index's height, after {lasted}")

    async def _reorg(self):
        await self._flush_in_steps()
        fork = await self._fork_height()
        self.log.info("chain reorganisation: backing out {depth} blocks to height {fork}",
                      depth=self.db.height - fork, fork=fork)
        self._back_out_to(fork)

    def force_reorg(self, count: int) -> int:
        """Back out the top `count` blocks as if the node had reorganised (the admin
        `reorg` test aid); the node's chain is then fetched again.  Returns the new height.
        """
        if not self.is_caught_up:
            raise ChainError("the index is still catching up; try again when it has")
        assert self.processor is not None       # made when syncing started
        if not 1 <= count <= self.db.height:
            raise ChainError(f"cannot back out {count} blocks from height {self.db.height}")
        self.processor.flush(first_sync=False)
        fork = self.db.height - count
        self.log.info("forced reorganisation: backing out {count} blocks to height {fork}",
                      count=count, fork=fork)
        self._back_out_to(fork)
        return fork

    def _back_out_to(self, fork: int):
        """Undo blocks down to height `fork` in one reactor turn, then tell the listeners."""
        processor = self.processor
        assert processor is not None            # a reorg is found while syncing
        depth = self.db.height - fork
        missing = [h for h in range(fork + 1, self.db.height + 1) if not self.db.has_undo(h)]
        if missing:
            raise ChainError(
                f"reorg of {depth} blocks back to height {fork} is deeper than the undo "
                f"information kept (none for height {missing[-1]}; REORG_LIMIT="
                f"{self.reorg_limit}); the index is unchanged at height {self.db.height}")
        touched = set()
        while self.db.height > fork:
            touched |= processor.backup_block()
        self.prefetcher.reset(self.db.height)
        if self.mempool is not None:
            touched |= self.mempool.on_reorg()
        self._notify(touched)

    async def _fork_height(self) -> int:
        """The highest height where our chain and the node's agree."""
        height = self.db.height
        daemon_height = await self.daemon.height()
        top = min(height, daemon_height)
        count = 1
        while True:
            start = max(0, top - count + 1)
            ours = self.db.block_hashes(start, top - start + 1)
            theirs = await self.daemon.block_hashes(start, len(ours))
            for i in range(len(ours) - 1, -1, -1):
                if hash_to_hex_str(ours[i]) == theirs[i]:
                    return start + i
            if start == 0:
                raise ChainError("the node's chain shares no block with the index, not even "
                                 "genesis: wrong coin or network?")
            count *= 2

    # ---- progress --------------------------------------------------------

    def _log_progress(self):
        line = self.progress_line()
        if line is not None:
            self.log.info("{line}", line=line)

    def sync_progress(self):
        """How the sync goes, as a `SyncProgress`; None before it began."""
        if self.processor is None:
            return None
        started, start_height, start_txs = self._sync_start
        elapsed = max(time.monotonic() - started, 1e-9)
        height = self.processor.height
        target = max(self.prefetcher.daemon_height, height, 1)
        # Blocks grow over a chain's life, so this ETA is a floor, not a promise.
        eta = (target - height) * elapsed / max(height - start_height, 1)
        return SyncProgress(height=height, target=target, percent=100.0 * height / target,
                            tx_per_sec=(self.processor.tx_count - start_txs) / elapsed,
                            cache_bytes=self.processor.cache_bytes(), eta_secs=eta)

    def progress_line(self):
        """How the sync goes (height, share done, rate, cache, ETA) in one line for the log
        and systemd; None before it began."""
        p = self.sync_progress()
        if p is None:
            return None
        return (f"height {p.height:,d}/{p.target:,d} ({p.percent:.1f}%), "
                f"{p.tx_per_sec:,.0f} tx/s, cache {p.cache_bytes / 1048576:,.0f} MB, "
                f"ETA {format_secs(p.eta_secs)}")


@dataclass(frozen=True)
class SyncProgress:
    """Where the sync is: the index's height, the node's (`target`), transactions indexed
    per second since the sync began, the unflushed cache, and an ETA in seconds (a floor:
    the blocks ahead are usually bigger than those behind)."""

    height: int
    target: int
    percent: float
    tx_per_sec: float
    cache_bytes: int
    eta_secs: float


class Timing:
    """A count and a sum of seconds: a Prometheus summary without quantiles."""

    __slots__ = ("count", "seconds", "last")

    def __init__(self):
        self.count = 0
        self.seconds = 0.0
        self.last = 0.0

    def add(self, secs: float):
        self.count += 1
        self.seconds += secs
        self.last = secs


@dataclass(slots=True)
class BlockTiming:
    """One block as the indexer applied it: what it held and how long it took.

    `applied_secs` is the time to apply it to the cache; `flush_and_notify_secs`
    (None while syncing, when blocks are flushed in batches) the time to write it to
    LevelDB, update the mempool and tell the subscribers, once caught up.
    `indexed_at` is wall-clock time (time.time()).
    """

    height: int
    block_hash: bytes
    tx_count: int
    size: int
    applied_secs: float
    indexed_at: float
    flush_and_notify_secs: float | None = None


RECENT_BLOCKS = 10
"""Blocks `IndexTimings.recent_blocks` remembers (for the status page)."""


class IndexTimings:
    """How long block processing and flushes take, for the admin RPC, metrics and the
    status page: running totals, and the last RECENT_BLOCKS blocks one by one."""

    def __init__(self) -> None:
        self.blocks = Timing()
        self.flushes = Timing()
        self.recent_blocks: deque[BlockTiming] = deque(maxlen=RECENT_BLOCKS)
        self.longest_flush_stall = 0.0
        """The longest a flush held the reactor without a turn, in seconds."""

    def note_stall(self, secs: float):
        self.longest_flush_stall = max(self.longest_flush_stall, secs)
