"""Under twistd, Twisted's own events pass LOG_LEVEL too, and its chatter only at debug."""

from twisted.logger import LogLevel, LogPublisher, formatEvent

from electrumx.logs import filter_twistd_log, filtered, set_log_level, twistd_observer

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
