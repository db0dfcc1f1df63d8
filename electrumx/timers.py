"""Repeating calls as Twisted services, on a clock a test can drive."""

from twisted.application.internet import TimerService


def timer_service(clock, secs: float, call) -> TimerService:
    """A TimerService calling `call` every `secs` seconds of `clock` (the reactor, or a
    test's task.Clock), the first time as it starts.  TimerService takes its clock only
    as an attribute, set before it starts."""
    timer = TimerService(secs, call)
    timer.clock = clock
    return timer
