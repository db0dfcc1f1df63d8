"""`twistd electrumx`: the command line and the service maker behind the plugin.

The options are generated from the settings table, one `--kebab-case`
option per ElectrumX variable.  A bad configuration stops twistd with one
line on standard error and exit status 2, before anything is written:
twistd calls `makeService` before it opens its log or pid file, and lets a
SystemExit raised there end the process.

Under twistd, SIGTERM and SIGINT stop the server cleanly with exit status 0
(`electrumx.shutdown`); a fatal error, at start-up or later, with status 1.
"""

import gc
import os
import sys

from twisted.python import usage

from electrumx import SERVER_VERSION
from electrumx.config import SETTINGS, ConfigError, load_settings
from electrumx.logs import filter_twistd_log, set_log_level

CONFIG_ERROR_EXIT_STATUS = 2


class Options(usage.Options):
    """The command line of `twistd electrumx`."""

    synopsis = "[options]"
    longdesc = (f"{SERVER_VERSION}: an Electrum protocol server. Every option can also be "
                "set in the environment under its ElectrumX name (shown in brackets), or as "
                "NAME=VALUE in the file given with --config. An option wins over the "
                "environment, and the environment over the file.")
    optFlags = [
        ["demo", None, "start the built-in regtest node in-process and serve it (on "
                       "127.0.0.1; no bitcoind, DAEMON_URL or DB_DIRECTORY needed)"],
    ]
    optParameters = [
        ["config", None, None, "file of NAME=VALUE settings, as a systemd EnvironmentFile"],
    ] + [[setting.option, None, None, setting.option_help()] for setting in SETTINGS]

    def postOptions(self):
        if self.parent is not None:         # under twistd: its own log obeys LOG_LEVEL too
            filter_twistd_log(self.parent)

    def setting_texts(self) -> dict:
        """{NAME: text} of the settings given on the command line (None if not given)."""
        return {setting.name: self[setting.option] for setting in SETTINGS}


def settings_from_options(options: Options, environ=None):
    """The Settings from parsed options, the environment (default os.environ) and --config."""
    return load_settings(options.setting_texts(), environ, options["config"],
                         demo=bool(options["demo"]))


def refuse_root(settings, euid: int, switch_to_uid=None, keep_real_uid=False):
    """Running as root is refused unless ALLOW_ROOT: a server bug would own the machine.

    Starting as root is fine when twistd is told to become another user
    (`--uid`): it drops root after binding its ports, before the server
    starts.  Not with `--euid`, which keeps the real uid root and so the
    means to become root again.  The demo is exempt: it is a local try-out,
    often run in a container as root.
    """
    drops_root = switch_to_uid not in (None, 0) and not keep_real_uid
    if euid == 0 and not drops_root and not settings.allow_root and not settings.demo:
        raise ConfigError("ALLOW_ROOT", "refusing to run as root; run as an unprivileged "
                                        "user (or have twistd switch to one with --uid), "
                                        "or set ALLOW_ROOT=yes to insist")


def makeService(options: Options):
    """The root service of `twistd electrumx`; exits with one line on a bad configuration."""
    try:
        settings = settings_from_options(options)
        twistd = options.parent if options.parent is not None else {}
        refuse_root(settings, os.geteuid(), twistd.get("uid"), bool(twistd.get("euid")))
    except ConfigError as e:
        sys.stderr.write(f"electrumx: error: {e}\n")
        sys.stderr.flush()
        raise SystemExit(CONFIG_ERROR_EXIT_STATUS) from None
    set_log_level(settings.log_level)
    # twistd installed the chosen reactor before calling us; import it only now.
    from twisted.internet import reactor
    from electrumx.controller import build_service
    from electrumx.hangup import ReloadOnHangup
    from electrumx.shutdown import StopOnSignals
    root = build_service(settings, reactor)
    StopOnSignals(reactor).setServiceParent(root)
    ReloadOnHangup(reactor, root.reload).setServiceParent(root)
    # Once started, the modules, classes and settings loaded live as long as the
    # process: out of the collector's sight, its full collections (one every few
    # seconds during a sync) no longer walk them, which took 40-55 ms of reactor
    # time each.
    reactor.callWhenRunning(gc.freeze)
    return root
