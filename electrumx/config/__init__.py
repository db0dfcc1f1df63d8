"""Configuration: every setting's declaration, where values come from, and their checks.

`load_settings(options, environ, config_file, demo)` returns a `Settings` or
raises one `ConfigError` whose text is a single line naming the setting.

    settings.py   the table of settings (name, parser, default, help)
    parsers.py    text -> value, with each setting's own validation
    sources.py    option > environment > config file > default; obsolete names
    services.py   SERVICES / REPORT_SERVICES and their Twisted endpoints
    tls.py        the certificate and key, loaded as the listeners will
    loader.py     all of it together, plus the checks across settings
"""

from electrumx.config.errors import ConfigError
from electrumx.config.loader import Settings, load_settings
from electrumx.config.settings import SETTINGS, Setting

__all__ = ["ConfigError", "Setting", "Settings", "SETTINGS", "load_settings"]
