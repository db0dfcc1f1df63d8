"""Under twistd, Twisted's own events pass LOG_LEVEL too, and its chatter only at debug."""

import os
import signal

import pytest
import pytest_twisted
from twisted.logger import LogLevel, LogPublisher, formatEvent

from electrumx.logs import (filter_twistd_log, filtered, set_log_level, twistd_log,
                            twistd_observer)
from tests.fixtures.regtest import wait_for

GOODBYE = "Got remote error, code {code}\nreason: {description}"


def twisted_events():
    """One event of each kind Twisted logs, as its loggers and old log API publish them."""
    return [
        {"log_namespace": "twisted.conch.ssh.transport.SSHServerTransport",
         "log_level": LogLevel.debug, "log_format": "NEW KEYS"},
        {"log_namespace": "twisted.conch.ssh.session", "log_level": LogLevel.info,
         "log_format": "requesting shell"},
        {"log_namespace": "electrumx.tap.Factory", "log_level": LogLevel.info,
         "log_format": "Starting factory {factory!r}", "factory": object()},
        {"log_namespace": "log_legacy", "log_level": LogLevel.info,
         "log_format": "{log_text}", "log_text": "ElectrumFactory starting on 50001",
         "log_system": "HTTP11ClientProtocol,client"},
        {"log_namespace": "log_legacy", "log_level": LogLevel.info,
         "log_format": "{log_text}", "log_text": "(TCP Port 50001 Closed)"},
        {"log_namespace": "log_legacy", "log_level": LogLevel.info,
         "log_format": "{log_text}", "log_text": "set uid/gid 65534/65534"},
        {"log_namespace": "twisted.internet.base", "log_level": LogLevel.info,
         "log_format": "Received SIGTERM, shutting down."},
        {"log_namespace": "twisted.conch.ssh.transport.SSHServerTransport",
         "log_level": LogLevel.error, "log_format": GOODBYE, "code": 11,
         "description": b"disconnected by user"},
        {"log_namespace": "twisted.conch.ssh.transport.SSHServerTransport",
         "log_level": LogLevel.error, "log_format": GOODBYE, "code": 2,
         "description": b"protocol error"},
    ]


def test_twisted_chatter_shows_only_at_debug():
    shown = []
    observer = filtered(LogPublisher(shown.append))
    try:
        for level, expected in [("info", ["set uid/gid 65534/65534",
                                          "Received SIGTERM, shutting down.",
                                          "Got remote error, code 2\nreason: b'protocol error'"]),
                                ("debug", [formatEvent(e) for e in twisted_events()])]:
            shown.clear()
            set_log_level(level)
            for event in twisted_events():
                observer(event)
            assert [formatEvent(e) for e in shown] == expected, level
    finally:
        set_log_level("info")


def test_twistd_logs_through_the_filter_unless_given_a_logger(tmp_path):
    options = {"logger": None, "logfile": str(tmp_path / "x.log"), "syslog": False,
               "prefix": "twisted", "nodaemon": True}
    filter_twistd_log(options)
    assert options["logger"] == "electrumx.logs.twistd_observer"
    observer = twistd_observer()
    set_log_level("warn")
    try:
        observer({"log_namespace": "twisted.internet.base", "log_level": LogLevel.info,
                  "log_format": "hidden", "log_time": 0})
        observer({"log_namespace": "twisted.internet.base", "log_level": LogLevel.warn,
                  "log_format": "shown", "log_time": 0})
    finally:
        set_log_level("info")
    assert [line.split("] ", 1)[1] for line in
            (tmp_path / "x.log").read_text().splitlines()] == ["shown"]
    chosen = {"logger": "mine.observer"}
    filter_twistd_log(chosen)
    assert chosen == {"logger": "mine.observer"}


def said(text):
    return {"log_namespace": "electrumx", "log_level": LogLevel.info, "log_format": text,
            "log_time": 0}


def logged_lines(path) -> list:
    return [line.split("] ", 1)[1] for line in path.read_text().splitlines()]


def test_twistd_logs_to_stdout_with_a_dash_or_in_the_foreground_without_a_file(capsys):
    for options in ({"logfile": "-", "nodaemon": True}, {"logfile": None, "nodaemon": True}):
        twistd_log(options)(said("to stdout"))
        assert capsys.readouterr().out.endswith("] to stdout\n"), options
    with pytest.raises(SystemExit, match="Daemons cannot log to stdout"):
        twistd_log({"logfile": "-", "nodaemon": False})


@pytest_twisted.ensureDeferred
async def test_the_twistd_log_file_is_rotated_on_sigusr1(tmp_path):
    previous = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    try:
        log = twistd_log({"logfile": str(tmp_path / "x.log"), "nodaemon": False})
        log(said("before"))
        os.kill(os.getpid(), signal.SIGUSR1)
        await wait_for(lambda: (tmp_path / "x.log.1").exists(), timeout=5)
        log(said("after"))
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert logged_lines(tmp_path / "x.log.1") == ["before"]
    assert logged_lines(tmp_path / "x.log") == ["after"]
