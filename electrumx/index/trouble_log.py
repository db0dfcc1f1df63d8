"""Logging a trouble that lasts: one line as it starts, a reminder now and then, one as it ends.

A node that is down, behind the index, or failing to serve blocks is retried
every few seconds for as long as it takes.  A line per retry would bury the
log; a single line would leave an operator reading the last hour of it
unsure whether the trouble is still on.  So: a warning when it starts, the
same warning again every REMINDER_SECS while it lasts (with how long so
far), and one line when it ends.  Never a traceback: these are the node's
states, not our bugs.
"""

REMINDER_SECS = 300.0
"""How often a lasting trouble is logged again.  Five minutes puts a line in any
recent stretch of the log an operator looks at, and makes a day-long outage
about 300 lines, where a line per retry (every 4 s at most) would be 20,000."""


class TroubleLog:
    """The log lines of one kind of trouble, which is either on or off.

    `log` is the owner's Logger (the lines carry its namespace); `clock`
    gives the time (the reactor, or a `task.Clock` in tests).
    """

    def __init__(self, log, clock, reminder_secs: float = REMINDER_SECS):
        self.log = log
        self.clock = clock
        self.reminder_secs = reminder_secs
        self.since = None
        """When the trouble started (clock seconds), or None while there is none."""
        self._logged_at = None

    @property
    def active(self) -> bool:
        return self.since is not None

    def goes_on(self, text: str, **fields):
        """The trouble is there: log `text` if it has just started or is due a reminder."""
        now = self.clock.seconds()
        if self.since is None:
            self.since = self._logged_at = now
            self.log.warn(text, **fields)
        elif now - self._logged_at >= self.reminder_secs:
            self._logged_at = now
            self.log.warn(text + " (for {lasted} now)", lasted=format_secs(now - self.since),
                          **fields)

    def ended(self, text: str, **fields):
        """The trouble is over: log `text` (which may name `{lasted}`) if it was on."""
        if self.since is None:
            return
        lasted = format_secs(self.clock.seconds() - self.since)
        self.since = self._logged_at = None
        self.log.info(text, lasted=lasted, **fields)


def format_secs(secs: float) -> str:
    """A duration for a log line: 42s, 5m07s, 3h02m."""
    secs = int(secs)
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m{secs % 60:02d}s"
    return f"{secs // 3600}h{secs % 3600 // 60:02d}m"
