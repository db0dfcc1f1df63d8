"""A lasting trouble's log lines: one as it starts, one per reminder interval, one as it ends."""

from twisted.internet import task
from twisted.logger import Logger, LogLevel, formatEvent

from electrumx.index.trouble_log import REMINDER_SECS, TroubleLog, format_secs


def test_a_trouble_is_logged_as_it_starts_now_and_then_and_as_it_ends():
    clock, events = task.Clock(), []
    trouble = TroubleLog(Logger(observer=events.append), clock)
    trouble.ended("nothing was wrong")
    for _ in range(12):                 # a retry every minute, for twelve minutes
        trouble.goes_on("node {url} unavailable; retrying", url="n1")
        clock.advance(60)
    assert trouble.active and trouble.since == 0
    trouble.ended("node {url} answering again after {lasted}", url="n1")
    trouble.ended("node {url} answering again after {lasted}", url="n1")
    assert not trouble.active
    assert [(e["log_level"], formatEvent(e)) for e in events] == [
        (LogLevel.warn, "node n1 unavailable; retrying"),
        (LogLevel.warn, "node n1 unavailable; retrying (for 5m00s now)"),
        (LogLevel.warn, "node n1 unavailable; retrying (for 10m00s now)"),
        (LogLevel.info, "node n1 answering again after 12m00s")]
    assert REMINDER_SECS == 300


def test_each_trouble_starts_afresh():
    clock, events = task.Clock(), []
    trouble = TroubleLog(Logger(observer=events.append), clock, reminder_secs=1)
    trouble.goes_on("down")
    trouble.ended("up after {lasted}")
    clock.advance(0.5)
    trouble.goes_on("down")
    clock.advance(0.5)
    trouble.goes_on("down")             # 0.5 s into this one: no reminder yet
    assert [formatEvent(e) for e in events] == ["down", "up after 0s", "down"]


def test_durations_read_as_a_person_would_say_them():
    assert [format_secs(s) for s in (0.4, 59, 60, 307, 3599, 3600, 10_920)] == [
        "0s", "59s", "1m00s", "5m07s", "59m59s", "1h00m", "3h02m"]
