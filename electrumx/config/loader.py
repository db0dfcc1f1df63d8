"""Where settings come from, in order of precedence: option, environment, file, default.

`load_settings` reads all three sources, parses every value, checks the
settings against each other, and returns a `Settings`.  It writes nothing,
so a bad configuration stops the server before it touches the disk.
"""

import os

from electrumx.coins import CoinError, lookup_coin
from electrumx.config.errors import ConfigError
from electrumx.config.services import (check_report_services, check_rpc_is_local,
                                       parse_services)
from electrumx.config.settings import BY_NAME, OBSOLETE, SETTINGS
from electrumx.index.daemon_url import DaemonURLError, parse_daemon_urls


DEMO_DEFAULTS = {
    "COIN": "Bitcoin",
    "NET": "regtest",
    "SERVICES": "tcp://127.0.0.1:51001,ws://127.0.0.1:51003",
    "DB_DIRECTORY": os.path.join(os.path.expanduser("~"), ".local", "share", "txelectrumx",
                                 "demo"),
    "DAEMON_POLL_INTERVAL_BLOCKS": "1000",
    "DAEMON_POLL_INTERVAL_MEMPOOL": "1000",
    "PEER_DISCOVERY": "off",
    "PEER_ANNOUNCE": "no",
}
"""What `--demo` changes, below anything the operator sets."""


class Settings:
    """The parsed settings, one lowercase attribute per setting, plus derived values.

    Derived: `coin` (the coin class), `daemon_urls` (DaemonURLs), `services`
    and `report_services` (Service lists), `demo`.
    """

    def __init__(self, values: dict):
        self.__dict__.update(values)

    def __repr__(self):
        shown = {k: v for k, v in vars(self).items() if k != "daemon_url"}
        return f"Settings({shown!r})"


def read_config_file(path: str) -> dict:
    """KEY=VALUE lines, as a systemd EnvironmentFile: comments, blanks, optional quotes."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConfigError("--config", f"cannot read {path!r}: {e.strerror}") from None
    values = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--config", f"{path}:{number}: expected KEY=VALUE")
        if key not in BY_NAME and key not in OBSOLETE:
            raise ConfigError("--config", f"{path}:{number}: unknown setting {key}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def _refuse_obsolete(sources):
    for source in sources:
        for name, replacement in OBSOLETE.items():
            if name in source:
                raise ConfigError(name, f"this ElectrumX setting is obsolete; use "
                                        f"{replacement} instead")


def load_settings(options=None, environ=None, config_file=None, demo=False) -> Settings:
    """Settings from options (a {NAME: text or None} dict), the environment and a file."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    from_file = read_config_file(config_file) if config_file else {}
    _refuse_obsolete((environ, from_file))

    raw = {}
    for setting in SETTINGS:
        for source in (options, environ, from_file, DEMO_DEFAULTS if demo else {}):
            if setting.name in source:
                raw[setting.name] = source[setting.name]
                break

    try:
        coin = lookup_coin(raw.get("COIN", "Bitcoin"), raw.get("NET", "mainnet"))
    except CoinError as e:
        raise ConfigError("COIN" if str(e).startswith("unknown coin") else "NET",
                          str(e)) from None
    values = {}
    for setting in SETTINGS:
        if setting.name in raw:
            values[setting.attribute] = setting.parse(setting.name, raw[setting.name])
        else:
            default = setting.default(coin) if callable(setting.default) else setting.default
            values[setting.attribute] = (setting.parse(setting.name, default)
                                         if isinstance(default, str) else default)
    values["coin"] = coin       # the class, where the COIN text was
    values["demo"] = demo
    _derive(values, coin, demo)
    return Settings(values)


def _derive(values, coin, demo):
    """Cross-setting checks and derived values."""
    if demo:
        values["daemon_urls"] = []
    else:
        if not values["daemon_url"]:
            raise ConfigError("DAEMON_URL", "is required (the node's RPC URL), unless --demo")
        try:
            values["daemon_urls"] = parse_daemon_urls(values["daemon_url"], coin.RPC_PORT)
        except DaemonURLError as e:
            raise ConfigError("DAEMON_URL", str(e)) from None
        if not values["db_directory"]:
            raise ConfigError("DB_DIRECTORY", "is required (where to keep the index)")

    values["services"] = services = parse_services(values["services"], "SERVICES")
    check_rpc_is_local(services, values["rpc_allow_public"], "SERVICES")
    values["report_services"] = report = parse_services(values["report_services"],
                                                        "REPORT_SERVICES")
    check_report_services(report, "REPORT_SERVICES", values["peer_announce"])
    if any(s.is_tls for s in services):
        for name in ("SSL_CERTFILE", "SSL_KEYFILE"):
            if not values[name.lower()]:
                raise ConfigError(name, "is required to serve ssl or wss")
        _check_certificate(values["ssl_certfile"], values["ssl_keyfile"])

    if values["cost_hard_limit"] < values["cost_soft_limit"]:
        raise ConfigError("COST_HARD_LIMIT", "must not be below COST_SOFT_LIMIT")
    if values["cost_hard_limit"] == values["cost_soft_limit"]:
        values["cost_hard_limit"] += 1
    if values["tor_banner_file"] is None:
        values["tor_banner_file"] = values["banner_file"]


def _check_certificate(certfile, keyfile):
    """Load the certificate and key as the TLS listener will, so errors show at start-up."""
    from OpenSSL import SSL, crypto
    try:
        with open(certfile, "rb") as f:
            crypto.load_certificate(crypto.FILETYPE_PEM, f.read())
    except crypto.Error:
        raise ConfigError("SSL_CERTFILE", f"{certfile!r} is not a PEM certificate") from None
    context = SSL.Context(SSL.TLS_METHOD)
    try:
        context.use_certificate_chain_file(certfile)
        context.use_privatekey_file(keyfile)
        context.check_privatekey()
    except SSL.Error:
        raise ConfigError("SSL_KEYFILE", f"{keyfile!r} is not the PEM private key of "
                                         f"{certfile!r}") from None
