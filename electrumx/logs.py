"""The server's loggers, and the LOG_LEVEL filter in front of twistd's log.

Two paths lead through the same filter:

- every logger of ours writes through it, so LOG_LEVEL holds wherever the
  server runs (tests, the admin shell, embedding);
- under twistd, its log (the file, stdout or syslog it was told) is put
  behind the filter too, so that Twisted's own events obey LOG_LEVEL:
  twistd's option parsing calls `filter_twistd_log`, which names
  `twistd_observer` as twistd's `--logger` unless the operator gave one.

`set_log_level` moves the threshold (also live, later, from the admin RPC).
Besides the level, Twisted's per-connection chatter (see `is_chatter`) is
shown only at LOG_LEVEL=debug, and its HTTP client's never (a pair of lines for
every block batch fetched from the node would bury the rest).
"""

import re
import signal
import sys

from twisted.logger import (FilteringLogObserver, ILogObserver, LegacyLogObserverWrapper,
                            LogLevel, LogLevelFilterPredicate, PredicateResult,
                            globalLogPublisher, textFileLogObserver)
from twisted.logger import Logger as _TwistedLogger
from twisted.python.logfile import LogFile

DISCONNECT_BY_APPLICATION = 11
"""The SSH disconnect reason of a client that simply leaves (RFC 4253, 11.1)."""

CHATTY_NAMESPACES = ("twisted.conch",)
"""Twisted parts that log each step of every connection (the SSH stack: 112 lines for 5
admin shell logins, half at info); the shell logs logins and refusals itself."""

FACTORY_FORMATS = frozenset({"Starting factory {factory!r}", "Stopping factory {factory!r}"})
"""What a Twisted factory left `noisy` logs as it starts and stops (with its id(), no name)."""

HTTP_CLIENT_NAMESPACE = "twisted.web.client."
"""Where the factories of Twisted's HTTP client log: the node client's connection pools
start and stop one for every connection, so for every block batch (each comes over a
connection of its own); that chatter is dropped even at LOG_LEVEL=debug."""

SSH_GOODBYE_FORMAT = "Got remote error, code {code}\nreason: {description}"
"""How Conch logs, as an error, the goodbye every SSH client sends when it leaves
(DISCONNECT_BY_APPLICATION)."""

PORT_NOTICE = re.compile(r"(.+ starting on \S+|\((.+ )?Port \S+ Closed\))")
"""Twisted's listening ports announce themselves in its old log API, without a level or
namespace of their own and stamped with whichever protocol happened to be running
(`[HTTP11ClientProtocol,client] ElectrumFactory starting on 50001`); the Listener
already logs each listener by its name and address."""


def is_chatter(event) -> bool:
    """Whether `event` is Twisted's routine detail of a connection, a factory or a port."""
    if event.get("log_format") == SSH_GOODBYE_FORMAT:
        return event.get("code") == DISCONNECT_BY_APPLICATION
    if event.get("log_level") != LogLevel.info:
        return False
    namespace = event.get("log_namespace") or ""
    if namespace.startswith(CHATTY_NAMESPACES):
        return True
    if event.get("log_format") in FACTORY_FORMATS:
        return True
    return namespace == "log_legacy" and PORT_NOTICE.fullmatch(
        event.get("log_text") or "") is not None


def is_http_client_chatter(event) -> bool:
    """Whether `event` is a factory of Twisted's HTTP client starting or stopping."""
    return ((event.get("log_namespace") or "").startswith(HTTP_CLIENT_NAMESPACE)
            and event.get("log_format") in FACTORY_FORMATS)


def _drop_chatter(event):
    """A filter predicate: no to Twisted's chatter unless LOG_LEVEL is debug, and no to
    the HTTP client's factory chatter at every level."""
    if is_http_client_chatter(event):
        return PredicateResult.no
    if _levels.logLevelForNamespace("") > LogLevel.debug and is_chatter(event):
        return PredicateResult.no
    return PredicateResult.maybe


_levels = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
_predicates = [_drop_chatter, _levels]
_filtered = FilteringLogObserver(globalLogPublisher, _predicates)
_twistd = {}
"""The twistd options `twistd_observer` builds twistd's own observer from."""


def Logger(namespace=None):
    """A twisted.logger.Logger whose events pass the LOG_LEVEL filter."""
    if namespace is None:
        namespace = sys._getframe(1).f_globals.get("__name__", "electrumx")
    return _TwistedLogger(namespace=namespace, observer=_filtered)


def set_log_level(name: str):
    """Show events at `name` (debug, info, warn, error, critical) and above."""
    _levels.setLogLevelForNamespace(None, LogLevel.levelWithName(name))


def filtered(observer):
    """`observer` (new-style, or twisted.python.log style) behind the LOG_LEVEL filter."""
    if not ILogObserver.providedBy(observer):
        observer = LegacyLogObserverWrapper(observer)
    return FilteringLogObserver(observer, _predicates)


def filter_twistd_log(twistd_options):
    """Have twistd log through the LOG_LEVEL filter, unless its `--logger` was given.

    twistd turns `--logger` from a name into the factory of its log observer
    right after the plugin's options are parsed, and calls it when logging
    starts, before the service is started.
    """
    if twistd_options.get("logger") is None:
        _twistd["options"] = twistd_options
        twistd_options["logger"] = f"{__name__}.{twistd_observer.__name__}"


def twistd_observer():
    """The observer twistd would have made from its options, behind the LOG_LEVEL filter."""
    return filtered(twistd_log(_twistd["options"]))


def twistd_log(options):
    """The log twistd's options ask for, made as twistd does it on Unix from Twisted's
    public parts (twistd's own maker has no public name): syslog with `--syslog`, stdout
    with `--logfile=-` or `-n` and no file, else the file (twistd.log by default)."""
    if options.get("syslog"):
        from twisted.python.syslog import SyslogObserver
        return SyslogObserver(options.get("prefix", "")).emit
    path = options.get("logfile") or ""
    if path == "-" or (not path and options.get("nodaemon")):
        if not options.get("nodaemon"):
            sys.exit("Daemons cannot log to stdout, exiting!")
        return textFileLogObserver(sys.stdout)
    log_file = LogFile.fromFullPath(path or "twistd.log")
    rotate_on_sigusr1(log_file)
    return textFileLogObserver(log_file)


def rotate_on_sigusr1(log_file):
    """Rotate `log_file` on SIGUSR1, as twistd's log does, unless that signal already has
    a handler of someone else's."""
    if signal.getsignal(signal.SIGUSR1):        # SIG_DFL is 0, and None is no Python handler
        return

    def rotate(_number, _frame):
        from twisted.internet import reactor
        reactor.callFromThread(log_file.rotate)

    signal.signal(signal.SIGUSR1, rotate)
