"""Configuration: every setting's declaration, where values come from, and their checks.

Use `load_settings(options, environ)`; it returns a `Settings` or raises one
`ConfigError`.
"""

from electrumx.config.errors import ConfigError
from electrumx.config.loader import Settings, load_settings
from electrumx.config.settings import SETTINGS

__all__ = ["ConfigError", "Settings", "SETTINGS", "load_settings"]
