"""Value parsers: each turns a setting's text into its value or refuses it.

A parser is called as `parse(name, text)` and raises `ConfigError(name, ...)`
with a one-line reason, so every refusal names the setting it is about.
Parsers built by a factory (`integer(minimum=...)`) carry their validation.
A parser's return annotation is the type of its setting's attribute of
`Settings` (tests/config/test_settings_types.py holds them to it).
"""

import ipaddress
import re
from collections.abc import Callable
from typing import TypeAlias

from electrumx.config.errors import ConfigError

TRUE_WORDS = frozenset({"1", "yes", "y", "true", "on"})
FALSE_WORDS = frozenset({"0", "no", "n", "false", "off", ""})
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
"""A subnet of either IP version, as `networks` gives them."""


def text(name: str, value: str) -> str:
    """Any text, as given."""
    return value


def optional_text(name: str, value: str) -> str | None:
    """Text, or None when empty."""
    return value or None


def integer(minimum: int | None = None,
            maximum: int | None = None) -> Callable[[str, str], int]:
    """A parser of whole numbers within [minimum, maximum]."""
    def parse(name: str, value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ConfigError(name, f"{value!r} is not a whole number") from None
        if minimum is not None and number < minimum:
            raise ConfigError(name, f"{number} is below the minimum of {minimum}")
        if maximum is not None and number > maximum:
            raise ConfigError(name, f"{number} is above the maximum of {maximum}")
        return number
    return parse


_port_number = integer(minimum=1, maximum=65535)


def port(name: str, value: str) -> int | None:
    """A TCP port number, or None when empty (meaning: find it out)."""
    if not value.strip():
        return None
    return _port_number(name, value)


def boolean(name: str, value: str) -> bool:
    """The usual spellings of yes and no; empty is no, as in ElectrumX."""
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ConfigError(name, f"{value!r} is not a yes/no value (use 1/0, yes/no, true/false "
                            "or on/off)")


def choice(*choices: str) -> Callable[[str, str], str]:
    """A parser accepting one of `choices`, case-insensitively."""
    def parse(name: str, value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ConfigError(name, f"{value!r} is not one of {', '.join(choices)}")
        return lowered
    return parse


def db_engine(name: str, value: str) -> str:
    """Only LevelDB: the index layout is written for it, and RocksDB is not bundled."""
    if value.strip().lower() != "leveldb":
        raise ConfigError(name, f"{value!r} is not supported: this server keeps its index "
                                "in LevelDB only (DB_ENGINE=leveldb)")
    return "leveldb"


def regex(name: str, value: str) -> re.Pattern[str] | None:
    """A regular expression, compiled; None when empty."""
    if not value:
        return None
    try:
        return re.compile(value)
    except re.error as e:
        raise ConfigError(name, f"{value!r} is not a valid regular expression: {e}") from None


def readable_file(name: str, value: str) -> str | None:
    """A path to a file this process can read; None when empty."""
    if not value:
        return None
    try:
        with open(value, "rb"):
            pass
    except OSError as e:
        raise ConfigError(name, f"cannot read {value!r}: {e.strerror}") from None
    return value


def log_level(name: str, value: str) -> str:
    """A twisted.logger level name; `warning` is accepted for `warn`."""
    lowered = value.strip().lower()
    if lowered == "warning":
        return "warn"
    if lowered not in LOG_LEVELS:
        raise ConfigError(name, f"{value!r} is not a log level (debug, info, warning, error "
                                "or critical)")
    return lowered


def networks(name: str, value: str) -> tuple[IPNetwork, ...]:
    """Comma-separated IP addresses and subnets ("127.0.0.0/8, ::1"); empty is none."""
    parsed: list[IPNetwork] = []
    for item in value.split(","):
        if not item.strip():
            continue
        try:
            parsed.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigError(name, f"{item.strip()!r} is not an IP address or subnet") from None
    return tuple(parsed)


ZMQ_URL = re.compile(r"^(tcp://(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):\d{1,5}|ipc://\S+)$")
"""The endpoints a node's -zmqpub* options take that a subscriber can connect to."""


def zmq_url(name: str, value: str) -> str | None:
    """A ZMQ endpoint the node publishes on, tcp://host:port or ipc://path; None when
    empty."""
    value = value.strip()
    if not value:
        return None
    if not ZMQ_URL.match(value):
        raise ConfigError(name, f"{value!r} is not a ZMQ endpoint (tcp://host:port or "
                                "ipc://path, as given to the node's -zmqpub* option)")
    if value.startswith("tcp://") and not 0 < int(value.rsplit(":", 1)[1]) < 65536:
        raise ConfigError(name, f"{value!r} has no valid port")
    return value
