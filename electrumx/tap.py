"""`twistd electrumx`: the options and the service maker behind the plugin.

Options are generated from the settings table, one `--kebab-case` option
per ElectrumX variable.  A configuration error stops twistd with one line on
standard error and exit status 2, before anything is written.
"""

import os
import sys

from twisted.python import usage

from electrumx import SERVER_VERSION
from electrumx.config import SETTINGS, ConfigError, load_settings
from electrumx.logs import set_log_level


class Options(usage.Options):
    """The command line of `twistd electrumx`."""

    synopsis = "[options]"
    longdesc = (f"{SERVER_VERSION}: an Electrum protocol server. Every option can also be "
                "set in the environment under its ElectrumX name (shown in brackets), or in "
                "a file of NAME=VALUE lines given with --config. An option wins over the "
                "environment, and the environment over the file.")
    optFlags = [
        ["demo", None, "start the built-in regtest node in-process on a cached chain, index "
                       "it and serve it on 127.0.0.1 (no bitcoind needed)"],
    ]
    optParameters = [
        ["config", None, None, "file of NAME=VALUE settings (like a systemd EnvironmentFile)"],
    ] + [
        [s.option, None, None,
         f"{s.help} [{s.name}; default: {'(coin default)' if callable(s.default) else s.default or '(none)'}]"]
        for s in SETTINGS
    ]


def settings_from_options(options, environ=None):
    """Build the Settings from parsed Options (and the environment)."""
    given = {s.name: options[s.option] for s in SETTINGS}
    return load_settings(given, environ, options["config"], demo=bool(options["demo"]))


def makeService(options):
    """The root service; exits with one line on a bad configuration."""
    try:
        settings = settings_from_options(options)
        if os.geteuid() == 0 and not settings.allow_root and not settings.demo:
            raise ConfigError("ALLOW_ROOT", "refusing to run as root; run as an unprivileged "
                                            "user, or set ALLOW_ROOT to insist")
    except ConfigError as e:
        sys.stderr.write(f"electrumx: error: {e}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None
    from electrumx.controller import build_service
    set_log_level(settings.log_level)
    return build_service(settings)
