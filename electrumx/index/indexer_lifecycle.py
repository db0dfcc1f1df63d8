"""The indexer's life, and its mempool refreshes, as state machines.

starting          the index opens and the node is checked (network, how it finds transactions).
syncing           blocks are applied as they are fetched and flushed by cache
                  size; progress is logged.
caught_up         every block is flushed and told at once, the mempool is
                  refreshed, clients are served.
waiting_for_node  caught up, but the node's best chain lacks our tip (it is
                  below our height): clients are served from the index until
                  the node is back.
stopped           the last flush is written and the index closed; whatever
                  was under way and ends later changes nothing.

A failure the indexer cannot go on from is reported in every state but
stopped.  The mempool is refreshed one refresh at a time: idle, refreshing
(a tick or a poke meanwhile is skipped), refreshing_again (an announcement
came during a refresh: one more follows it, however many came), stopped.

The machines' transitions call the indexer's methods (`Core` lists them), and
are the only writers of `Indexer.state`, which mirrors where the lifecycle is
for whoever reads it, also from within a transition (a listener, a waiter).
"""

from typing import Protocol

from automat import TypeMachineBuilder
from twisted.python.failure import Failure

STARTING, SYNCING, CAUGHT_UP, WAITING_FOR_NODE, STOPPED = (
    "starting", "syncing", "caught_up", "waiting_for_node", "stopped")


class Core(Protocol):
    """What the machines do to the indexer."""

    state: str

    def _start_syncing(self) -> None: ...

    def _serve(self) -> None: ...

    def _note_node_behind(self, node_height: int) -> None: ...

    def _note_node_back(self) -> None: ...

    def _report_fatal(self, failure: Failure) -> None: ...

    def _shut_down(self, first_sync: bool) -> None: ...

    def _refresh_mempool(self) -> None: ...

    def _refresh_failed(self, failure: Failure) -> None: ...


class IndexerLifecycle(Protocol):
    """The events of an indexer's life (see the module's docstring)."""

    def node_checked(self) -> None:
        """The index is open, the node serves the coin's network, and how it finds
        transactions is known."""

    def caught_up(self) -> None:
        """The node has no block above the index's tip."""

    def node_behind(self, node_height: int) -> None:
        """The node's best chain lacks our tip: it is below our height."""

    def node_holds_our_tip(self) -> None:
        """The node's best chain holds our tip."""

    def failed(self, failure: Failure) -> None:
        """Something the indexer cannot go on from: a node that refuses our credentials
        or serves another network, a broken index or chain, a bug."""

    def stop(self) -> None:
        """The service stops."""


def _build_lifecycle():
    builder = TypeMachineBuilder(IndexerLifecycle, Core)
    starting = builder.state(STARTING)
    syncing = builder.state(SYNCING)
    caught_up = builder.state(CAUGHT_UP)
    waiting = builder.state(WAITING_FOR_NODE)
    stopped = builder.state(STOPPED)
    Events = IndexerLifecycle

    @starting.upon(Events.node_checked).to(syncing)
    def sync(lifecycle, indexer) -> None:
        indexer.state = SYNCING
        indexer._start_syncing()

    @syncing.upon(Events.caught_up).to(caught_up)
    def serve(lifecycle, indexer) -> None:
        indexer.state = CAUGHT_UP
        indexer._serve()

    # A node below our tip has nothing for us: we serve from the index meanwhile.
    @syncing.upon(Events.node_behind).to(waiting)
    def serve_and_wait(lifecycle, indexer, node_height) -> None:
        indexer.state = WAITING_FOR_NODE
        indexer._note_node_behind(node_height)
        indexer._serve()

    @caught_up.upon(Events.node_behind).to(waiting)
    @waiting.upon(Events.node_behind).loop()
    def wait(lifecycle, indexer, node_height) -> None:
        indexer.state = WAITING_FOR_NODE
        indexer._note_node_behind(node_height)

    @waiting.upon(Events.node_holds_our_tip).to(caught_up)
    def node_back(lifecycle, indexer) -> None:
        indexer.state = CAUGHT_UP
        indexer._note_node_back()

    syncing.upon(Events.node_holds_our_tip).loop().returns(None)
    caught_up.upon(Events.node_holds_our_tip).loop().returns(None)
    caught_up.upon(Events.caught_up).loop().returns(None)
    waiting.upon(Events.caught_up).loop().returns(None)

    @starting.upon(Events.failed).loop()
    @syncing.upon(Events.failed).loop()
    @caught_up.upon(Events.failed).loop()
    @waiting.upon(Events.failed).loop()
    def report(lifecycle, indexer, failure) -> None:
        indexer._report_fatal(failure)

    @starting.upon(Events.stop).to(stopped)
    @syncing.upon(Events.stop).to(stopped)
    def stop_syncing(lifecycle, indexer) -> None:
        indexer.state = STOPPED
        indexer._shut_down(first_sync=True)

    @caught_up.upon(Events.stop).to(stopped)
    @waiting.upon(Events.stop).to(stopped)
    def stop_serving(lifecycle, indexer) -> None:
        indexer.state = STOPPED
        indexer._shut_down(first_sync=False)

    # Whatever was under way at the stop may still end: nothing more is done.
    for event in (Events.node_checked, Events.caught_up, Events.node_behind,
                  Events.node_holds_our_tip, Events.failed, Events.stop):
        stopped.upon(event).loop().returns(None)
    return builder.build()


class MempoolRefresh(Protocol):
    """One mempool refresh at a time, from the timer's ticks and pokes."""

    def due(self) -> None:
        """The poll interval is over, or a block was applied."""

    def announced(self) -> None:
        """The node announced a mempool change (ZMQ): refresh now, or once more after the
        refresh under way, which may have listed the mempool before the change."""

    def refreshed(self) -> None:
        """The refresh under way has ended."""

    def failed(self, failure: Failure) -> None:
        """The refresh under way failed."""

    def stop(self) -> None:
        """The indexer stops: a poke may still come due, and a refresh cut short by the
        shutdown is no failure."""


def _build_mempool_refresh():
    builder = TypeMachineBuilder(MempoolRefresh, Core)
    idle = builder.state("idle")
    refreshing = builder.state("refreshing")
    again = builder.state("refreshing_again")
    stopped = builder.state("stopped")
    Events = MempoolRefresh

    @idle.upon(Events.due).to(refreshing)
    @idle.upon(Events.announced).to(refreshing)
    @again.upon(Events.refreshed).to(refreshing)
    def refresh(refresh, indexer) -> None:
        indexer._refresh_mempool()

    @refreshing.upon(Events.failed).to(idle)
    @again.upon(Events.failed).to(idle)           # the next tick tries again
    def log_failure(refresh, indexer, failure) -> None:
        indexer._refresh_failed(failure)

    refreshing.upon(Events.due).loop().returns(None)         # it is under way already
    refreshing.upon(Events.announced).to(again).returns(None)
    again.upon(Events.due).loop().returns(None)
    again.upon(Events.announced).loop().returns(None)        # one pending is enough
    refreshing.upon(Events.refreshed).to(idle).returns(None)
    for state in (idle, refreshing, again):
        state.upon(Events.stop).to(stopped).returns(None)
    for event in (Events.due, Events.announced, Events.refreshed, Events.failed, Events.stop):
        stopped.upon(event).loop().returns(None)
    return builder.build()


new_lifecycle = _build_lifecycle()
"""new_lifecycle(indexer) -> an IndexerLifecycle in state starting."""
new_mempool_refresh = _build_mempool_refresh()
"""new_mempool_refresh(indexer) -> a MempoolRefresh in state idle."""

