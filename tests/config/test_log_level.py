"""LOG_LEVEL filters what the server's loggers emit."""

from twisted.logger import globalLogPublisher

from electrumx.logs import Logger, set_log_level


def test_log_level_filters_our_events():
    seen = []
    globalLogPublisher.addObserver(seen.append)
    log = Logger()
    try:
        set_log_level("warn")
        log.info("hidden")
        log.warn("shown")
        set_log_level("debug")
        log.debug("also shown")
    finally:
        set_log_level("info")
        globalLogPublisher.removeObserver(seen.append)
    formats = [event["log_format"] for event in seen if event["log_namespace"] == __name__]
    assert formats == ["shown", "also shown"]
