"""A bound on what the server holds, in all, for clients that do not read.

A client that stops reading pauses its session (the transport's buffer is
full), and replies and notifications for it queue in the server's memory.
Each session may queue up to 2 x MAX_SEND that way (a wallet fetching a
large history legitimately pauses for a moment), but twenty clients that
never read would then hold 20 x 16 MB.  So the bytes queued to paused
sessions are also counted together: past the budget, the session that has
been paused the longest is cut off.  A client that reads resumes within
moments, so its pause is always recent; one that never reads has been paused
since it stopped, and is the first to go.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:       # sessions report their pauses here: named for the types only
    from electrumx.protocol.session import SessionBase

PAUSED_BUDGET_SENDS = 6
"""The budget, in MAX_SENDs (48 MB for Bitcoin): room for several wallets each
receiving a maximal reply slowly at once, and a bound on what any number of clients
that never read can hold."""


class PausedSendBudget:
    """Counts the bytes queued to write-paused sessions, across the server."""

    def __init__(self, clock, budget_bytes: int):
        self.clock = clock
        self.budget_bytes = budget_bytes
        self.queued_bytes = 0
        self._paused: dict["SessionBase", tuple[float, int]] = {}
        """Each paused session: (when its pause began, bytes queued to it since)."""

    def paused(self, session):
        self._paused[session] = (self.clock.seconds(), 0)

    def resumed(self, session):
        """The session's client read (or it ended): its queue no longer counts."""
        _since, queued = self._paused.pop(session, (0, 0))
        self.queued_bytes -= queued

    def queued(self, session, count: int):
        """`count` bytes were queued to the paused `session`; past the budget, cut off
        the longest-paused sessions until it holds (`session` may be one of them)."""
        since, queued = self._paused[session]
        self._paused[session] = (since, queued + count)
        self.queued_bytes += count
        while self.queued_bytes > self.budget_bytes and self._paused:
            longest = min(self._paused, key=lambda s: self._paused[s][0])
            self.resumed(longest)
            longest.cut_off_not_reading()
