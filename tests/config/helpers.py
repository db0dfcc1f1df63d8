"""Loading settings in tests: a minimal valid environment, and a refusal's one line."""

import pytest

from electrumx.config import ConfigError, load_settings

PASSWORD = "s3cretPassw0rd"
BASE = {"DAEMON_URL": f"http://user:{PASSWORD}@127.0.0.1:8332/", "DB_DIRECTORY": "/tmp/db"}


def load(env=None, options=None, config_file=None, demo=False):
    """Settings from a minimal valid environment plus `env`."""
    return load_settings(options or {}, {**BASE, **(env or {})}, config_file, demo)


def refused(env=None, **kwargs):
    """The message of the ConfigError these settings raise; checked to be one line."""
    with pytest.raises(ConfigError) as info:
        load(env, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    assert PASSWORD not in message
    return message
