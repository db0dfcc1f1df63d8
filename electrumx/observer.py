"""Telling others of events: one that happens once (`OneShotObserver`), and one that
happens again and again (`Listeners`)."""

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


class Listeners:
    """Callbacks told of each event, in the order they were added.

    One that raises is logged (with `log`, naming `what` was told) and the
    rest are still told: a broken listener must not keep the others from
    hearing of an index change.
    """

    def __init__(self, log, what: str):
        self._log = log
        self._what = what
        self._callbacks: list = []

    def add(self, callback):
        self._callbacks.append(callback)

    def tell(self, *args):
        for callback in self._callbacks:
            try:
                callback(*args)
            except Exception:
                self._log.failure("{what} listener {callback!r} failed", what=self._what,
                                  callback=callback)
