"""Every setting the server reads, declared once: name, parser, default, help.

The names are ElectrumX's environment variables; the command-line options
(`--cache-mb` for CACHE_MB) are generated from this table, and so is
`twistd electrumx --help`.  Adding a setting is adding one `Setting(...)`.

A default may be a callable of the coin class, for settings whose default
depends on the coin (ports, REORG_LIMIT, MAX_SEND).
"""

import re

from electrumx.config.errors import ConfigError


class Setting:
    """One setting: how to parse its text and what it is when nobody sets it."""

    __slots__ = ("name", "parse", "default", "help", "secret")

    def __init__(self, name, parse, default, help, secret=False):
        self.name = name
        self.parse = parse
        self.default = default
        self.help = help
        self.secret = secret

    @property
    def attribute(self) -> str:
        return self.name.lower()

    @property
    def option(self) -> str:
        return self.name.lower().replace("_", "-")


# ---- parsers: text -> value, raising ConfigError(name, problem) ------------

def text(name, value):
    return value


def optional_text(name, value):
    return value or None


def integer(minimum=None, maximum=None, optional=False):
    def parse(name, value):
        if optional and not value.strip():
            return None
        try:
            number = int(value.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(name, f"{value!r} is not a whole number") from None
        if minimum is not None and number < minimum:
            raise ConfigError(name, f"{number} is below the minimum of {minimum}")
        if maximum is not None and number > maximum:
            raise ConfigError(name, f"{number} is above the maximum of {maximum}")
        return number
    return parse


def number(minimum=0.0):
    def parse(name, value):
        try:
            result = float(value)
        except ValueError:
            raise ConfigError(name, f"{value!r} is not a number") from None
        if result < minimum:
            raise ConfigError(name, f"{result} is below the minimum of {minimum}")
        return result
    return parse


_TRUE = {"1", "yes", "y", "true", "on"}
_FALSE = {"0", "no", "n", "false", "off", ""}


def boolean(name, value):
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(name, f"{value!r} is not a yes/no value (use 1/0, yes/no, true/false, "
                            "on/off)")


def choice(*choices):
    def parse(name, value):
        lowered = value.strip().lower()
        if lowered not in choices:
            raise ConfigError(name, f"{value!r} is not one of {', '.join(choices)}")
        return lowered
    return parse


def regex(name, value):
    if not value:
        return None
    try:
        return re.compile(value)
    except re.error as e:
        raise ConfigError(name, f"{value!r} is not a valid regular expression: {e}") from None


def readable_file(name, value):
    if not value:
        return None
    try:
        with open(value, "rb"):
            pass
    except OSError as e:
        raise ConfigError(name, f"cannot read {value!r}: {e.strerror}") from None
    return value


def log_level(name, value):
    levels = ("debug", "info", "warn", "warning", "error", "critical")
    lowered = value.strip().lower()
    if lowered not in levels:
        raise ConfigError(name, f"{value!r} is not a log level ({', '.join(levels)})")
    return "warn" if lowered == "warning" else lowered


SETTINGS = [
    # The chain and the node
    Setting("COIN", text, "Bitcoin", "coin name, e.g. Bitcoin or Litecoin"),
    Setting("NET", text, "mainnet", "network: mainnet, testnet, testnet4, signet, regtest"),
    Setting("DAEMON_URL", text, "", "node RPC URL(s), comma-separated for failover: "
            "http://user:pass@host:port/ (port defaults to the coin's RPC port)", secret=True),
    Setting("DB_DIRECTORY", text, "", "directory of the index database (required)"),
    Setting("DB_ENGINE", choice("leveldb"), "leveldb", "database engine (only leveldb)"),
    Setting("CACHE_MB", integer(minimum=16), 1200,
            "memory for unflushed index changes during initial sync, in MB"),
    Setting("REORG_LIMIT", integer(minimum=1), lambda coin: coin.REORG_LIMIT,
            "deepest reorg the index can back out (blocks of undo data kept)"),
    Setting("DAEMON_POLL_INTERVAL_BLOCKS", integer(minimum=10), 5000,
            "how often to ask the node for new blocks, in ms"),
    Setting("DAEMON_POLL_INTERVAL_MEMPOOL", integer(minimum=10), 5000,
            "how often to refresh the mempool, in ms"),
    # Serving
    Setting("SERVICES", text, "", "services to serve: comma-separated proto://host:port "
            "with proto one of tcp, ssl, ws, wss, rpc"),
    Setting("REPORT_SERVICES", text, "", "services to advertise to peers and clients"),
    Setting("RPC_ALLOW_PUBLIC", boolean, "no", "allow the admin RPC on a non-loopback address"),
    Setting("SSL_CERTFILE", readable_file, "", "TLS certificate file (ssl and wss services)"),
    Setting("SSL_KEYFILE", readable_file, "", "TLS private key file (ssl and wss services)"),
    Setting("MAX_SESSIONS", integer(minimum=1), 1000, "most client sessions at once"),
    Setting("MAX_SEND", integer(minimum=350_000), lambda coin: coin.DEFAULT_MAX_SEND,
            "largest response in bytes"),
    Setting("MAX_RECV", integer(minimum=100_000), 1_000_000, "largest request line in bytes"),
    Setting("MAX_SUBS", integer(minimum=0), 250_000,
            "most script subscriptions across all sessions (0: no limit)"),
    Setting("MAX_SESSION_SUBS", integer(minimum=0), 50_000,
            "most script subscriptions per session (0: no limit)"),
    Setting("MAX_GROUP_SUBS", integer(minimum=0), 100_000,
            "most script subscriptions per session group (0: no limit)"),
    Setting("COST_SOFT_LIMIT", integer(minimum=0), 1000,
            "session cost above which requests are slowed"),
    Setting("COST_HARD_LIMIT", integer(minimum=0), 10000,
            "session cost at which a session is disconnected"),
    Setting("BANDWIDTH_UNIT_COST", integer(minimum=1), 5000, "bytes that cost one unit"),
    Setting("REQUEST_SLEEP", integer(minimum=0), 2500,
            "longest sleep before a request of a costly session, in ms"),
    Setting("INITIAL_CONCURRENT", integer(minimum=1), 10,
            "concurrent requests per session below the soft limit"),
    Setting("REQUEST_TIMEOUT", integer(minimum=1), 30, "seconds a request may take"),
    Setting("SESSION_TIMEOUT", integer(minimum=1), 600, "seconds an idle session is kept"),
    Setting("SESSION_GROUP_BY_SUBNET_IPV4", integer(minimum=0, maximum=32), 24,
            "IPv4 prefix length that groups sessions"),
    Setting("SESSION_GROUP_BY_SUBNET_IPV6", integer(minimum=0, maximum=128), 48,
            "IPv6 prefix length that groups sessions"),
    Setting("DROP_CLIENT", regex, "", "regular expression of client versions to refuse"),
    Setting("BANNER_FILE", readable_file, "", "file with the server banner"),
    Setting("TOR_BANNER_FILE", readable_file, "",
            "file with the banner for Tor clients (default BANNER_FILE)"),
    Setting("DONATION_ADDRESS", text, "", "address returned by server.donation_address"),
    # Peers and Tor
    Setting("PEER_DISCOVERY", choice("on", "off", "self"), "on",
            "find peers: on, off, or self (only check ourselves)"),
    Setting("PEER_ANNOUNCE", boolean, "yes", "announce ourselves to peers"),
    Setting("BLACKLIST_URL", optional_text, "", "URL of a peer blacklist"),
    Setting("TOR_PROXY_HOST", text, "localhost", "Tor SOCKS proxy host"),
    Setting("TOR_PROXY_PORT", integer(minimum=1, maximum=65535, optional=True), "",
            "Tor SOCKS proxy port (default: try 9050, 9150, 1080)"),
    Setting("FORCE_PROXY", boolean, "no", "connect to every peer through the proxy"),
    # Logging and operation
    Setting("LOG_LEVEL", log_level, "info", "debug, info, warning, error or critical"),
    Setting("LOG_SESSIONS", integer(minimum=0), 3600,
            "seconds between session summaries in the log (0: never)"),
    Setting("ANON_LOGS", boolean, "no", "leave client addresses out of the log"),
    Setting("ALLOW_ROOT", boolean, "no", "allow running as root"),
]

BY_NAME = {setting.name: setting for setting in SETTINGS}

OBSOLETE = {
    "MAX_SUBSCRIPTIONS": "MAX_SUBS",
    "BANDWIDTH_LIMIT": "COST_SOFT_LIMIT, COST_HARD_LIMIT and BANDWIDTH_UNIT_COST",
    "HOST": "SERVICES",
    "TCP_PORT": "SERVICES",
    "SSL_PORT": "SERVICES",
    "RPC_HOST": "SERVICES (rpc://host:port)",
    "RPC_PORT": "SERVICES (rpc://host:port)",
    "REPORT_HOST": "REPORT_SERVICES",
    "REPORT_TCP_PORT": "REPORT_SERVICES",
    "REPORT_SSL_PORT": "REPORT_SERVICES",
    "REPORT_HOST_TOR": "REPORT_SERVICES",
    "REPORT_TCP_PORT_TOR": "REPORT_SERVICES",
    "REPORT_SSL_PORT_TOR": "REPORT_SERVICES",
    "EVENT_LOOP_POLICY": "twistd --reactor",
}
"""ElectrumX variables this server refuses, and what replaces each."""
