"""An event that happens once, which any number of callers may wait for."""

from twisted.internet import defer


class OneShotObserver:
    """Each `when_fired()` gets a Deferred of its own, fired with the event's value.

    One shared Deferred would hand the first callback's return value to the
    next (None, usually), and a callback that raised would hand its failure
    to all the later ones.  Here a waiter's callbacks touch only its own
    Deferred, and one asking after the event gets an already-fired Deferred
    with the value.
    """

    def __init__(self):
        self.fired = False
        self._value = None
        self._waiters = []

    def when_fired(self):
        """A Deferred of the event's value: at once if it has happened."""
        if self.fired:
            return defer.succeed(self._value)
        d = defer.Deferred()
        self._waiters.append(d)
        return d

    def fire(self, value):
        """The event happened, with `value`; later calls are ignored (it happens once)."""
        if self.fired:
            return
        self.fired = True
        self._value = value
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(value)
