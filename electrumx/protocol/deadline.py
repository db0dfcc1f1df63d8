"""A deadline: one timer that fires once unless stopped in time.

Connections use them for the phases a client must get through quickly: the
TLS handshake, the WebSocket upgrade, the arrival of a request line.
"""


class Deadline:
    """Calls `expired()` `seconds` after `start()`, unless `stop()` comes first.

    Starting a running deadline changes nothing, so a caller may start it on
    every event of a phase and it still counts from the first one.
    """

    __slots__ = ("_clock", "_seconds", "_expired", "_call")

    def __init__(self, clock, seconds: float, expired):
        self._clock = clock
        self._seconds = seconds
        self._expired = expired
        self._call = None

    @property
    def running(self) -> bool:
        return self._call is not None

    def start(self):
        if self._call is None:
            self._call = self._clock.callLater(self._seconds, self._expire)

    def stop(self):
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def restart(self):
        """Start again from now, whether running or not."""
        self.stop()
        self.start()

    def _expire(self):
        self._call = None
        self._expired()
