"""A session's life, as a state machine: open, closing, ending, closed.

open      it serves: requests run and replies are sent.
closing   `close()` was called: what is queued is still sent, then the connection
          drops.  A client that has not read it within CLOSE_GRACE_SECS is aborted,
          and so is one closed a second time (the idle sweep's second pass).
ending    the connection is being aborted, or the transport is going: nothing
          more is sent.
closed    the connection is lost, and the session has left its manager, its
          group and its subscriptions.

Only these few events of a session's life go through the machine.  The
question every message asks, "is the session still open?", is the plain
attribute `session.is_open`: the transitions out of `open` clear it, and
nothing else writes it, so the per-request cost stays an attribute read.
"""

from typing import Protocol

from automat import TypeMachineBuilder
from twisted.internet.interfaces import IDelayedCall, IReactorTime

CLOSE_GRACE_SECS = 10.0
"""How long the client of a closing session has to read what is still queued
for it (at most 2 x MAX_SEND, 2 MB at the smallest MAX_SEND: 10 s is enough at
1.6 Mbit/s) before its connection is aborted: a client that stopped reading
must not keep its connection, its subscriptions and a MAX_SESSIONS slot."""


class SessionLifecycle(Protocol):
    """The events of a session's life (a session's `_lifecycle`)."""

    def close(self) -> None:
        """Disconnect once what is queued is sent; abort if already closing."""

    def abort(self) -> None:
        """Drop the connection now, with whatever is still queued."""

    def transport_ending(self) -> None:
        """The transport told its producer to stop: the connection is going."""

    def connection_lost(self) -> None:
        """The connection is gone."""


class _Manager(Protocol):
    clock: IReactorTime


class Connection(Protocol):
    """What the machine does to a session: the hooks `SessionBase` and its
    transports provide."""

    is_open: bool
    manager: _Manager

    def _stop_producing_for_transport(self) -> None: ...

    def _lose_connection(self) -> None: ...

    def _abort_connection(self) -> None: ...

    def _leave(self) -> None: ...


def _grace(lifecycle: SessionLifecycle, session: Connection) -> IDelayedCall:
    """Closing's data: the call that aborts the connection once the grace is over."""
    return session.manager.clock.callLater(CLOSE_GRACE_SECS, lifecycle.abort)


def _build():
    builder = TypeMachineBuilder(SessionLifecycle, Connection)
    open_ = builder.state("open")
    closing = builder.state("closing", _grace)
    ending = builder.state("ending")
    closed = builder.state("closed")

    @open_.upon(SessionLifecycle.close).to(closing)
    def close(lifecycle, session) -> None:
        # Twisted finishes a loseConnection only once no producer is registered, and
        # would otherwise resume a paused session instead of disconnecting it.
        session.is_open = False
        session._stop_producing_for_transport()
        session._lose_connection()

    @open_.upon(SessionLifecycle.abort).to(ending)
    def abort(lifecycle, session) -> None:
        session.is_open = False
        session._abort_connection()

    @closing.upon(SessionLifecycle.close).to(ending)
    @closing.upon(SessionLifecycle.abort).to(ending)
    def abort_closing(lifecycle, session, grace: IDelayedCall) -> None:
        _cancel(grace)
        session._abort_connection()

    @open_.upon(SessionLifecycle.transport_ending).to(ending)
    def transport_ending(lifecycle, session) -> None:
        session.is_open = False

    @open_.upon(SessionLifecycle.connection_lost).to(closed)
    @ending.upon(SessionLifecycle.connection_lost).to(closed)
    def lost(lifecycle, session) -> None:
        session.is_open = False
        session._leave()

    @closing.upon(SessionLifecycle.connection_lost).to(closed)
    def lost_closing(lifecycle, session, grace: IDelayedCall) -> None:
        _cancel(grace)
        session._leave()

    closing.upon(SessionLifecycle.transport_ending).loop().returns(None)
    for state in (ending, closed):
        state.upon(SessionLifecycle.close).loop().returns(None)
        state.upon(SessionLifecycle.abort).loop().returns(None)
        state.upon(SessionLifecycle.transport_ending).loop().returns(None)
    closed.upon(SessionLifecycle.connection_lost).loop().returns(None)
    return builder.build()


def _cancel(call: IDelayedCall):
    if call.active():
        call.cancel()


new_lifecycle = _build()
"""new_lifecycle(session) -> a SessionLifecycle in state open."""
