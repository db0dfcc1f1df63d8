"""The server's loggers, filtered by LOG_LEVEL before events reach twistd's log.

twistd starts its log observer after the service is made, so the level
cannot be set on that observer; instead every logger of ours writes through
one filter, and `set_log_level` moves its threshold (also live, later, from
the admin RPC).
"""

import sys

from twisted.logger import (FilteringLogObserver, LogLevel, LogLevelFilterPredicate,
                            globalLogPublisher)
from twisted.logger import Logger as _TwistedLogger

_predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_filtered = FilteringLogObserver(globalLogPublisher, [_predicate])


def Logger(namespace=None):
    """A twisted.logger.Logger whose events pass the LOG_LEVEL filter."""
    if namespace is None:
        namespace = sys._getframe(1).f_globals.get("__name__", "electrumx")
    return _TwistedLogger(namespace=namespace, observer=_filtered)


def set_log_level(name: str):
    """Show events at `name` (debug, info, warn, error, critical) and above."""
    _predicate.setLogLevelForNamespace(None, LogLevel.levelWithName(name))
