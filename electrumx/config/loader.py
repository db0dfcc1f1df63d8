"""From the sources to a checked `Settings`.

`load_settings` reads the options, the environment and the config file,
parses every value, checks the settings against each other and returns a
`Settings`.  It writes nothing, so a bad configuration stops the server with
one `ConfigError` before anything touches the disk.
"""

import os

from electrumx.coins import CoinError, all_coins, lookup_coin
from electrumx.config.authorized_keys import read_authorized_keys
from electrumx.config.daemon_url import DaemonURLError, default_cookie_path, parse_daemon_urls
from electrumx.config.errors import ConfigError
from electrumx.config.services import (check_reported, check_served, is_loopback,
                                       parse_services)
from electrumx.config.settings import BY_NAME, SETTINGS, Settings
from electrumx.config.sources import (choose_texts, read_config_file,
                                      refuse_obsolete_environment)
from electrumx.config.tls import check_tls_files

DEMO_DEFAULTS = {
    "COIN": "Bitcoin",
    "NET": "regtest",
    "SERVICES": "tcp://127.0.0.1:51001,ws://127.0.0.1:51003,rpc://127.0.0.1:8000",
    "DB_DIRECTORY": os.path.join(os.path.expanduser("~"), ".local", "share", "txelectrumx",
                                 "demo"),
    "DAEMON_POLL_INTERVAL_BLOCKS": "1000",
    "DAEMON_POLL_INTERVAL_MEMPOOL": "1000",
    "PEER_DISCOVERY": "off",
    "PEER_ANNOUNCE": "no",
}
"""What `--demo` changes: below anything the operator sets, above the defaults."""


def load_settings(options=None, environ=None, config_file=None, demo=False) -> Settings:
    """The settings from options ({NAME: text or None}), the environment and a file.

    `environ` defaults to os.environ.  Raises ConfigError on the first bad value.
    """
    environ = os.environ if environ is None else environ
    refuse_obsolete_environment(environ)
    from_file = read_config_file(config_file) if config_file else {}
    texts = choose_texts(options or {}, environ, from_file, DEMO_DEFAULTS if demo else {})

    coin = _lookup_coin(texts.get("COIN", BY_NAME["COIN"].default),
                        texts.get("NET", BY_NAME["NET"].default))
    values = {}
    for setting in SETTINGS:
        text = texts.get(setting.name, setting.default_text(coin))
        values[setting.attribute] = setting.parse(setting.name, text)
    values.update(coin=coin, net=coin.NET, demo=demo)
    _check_node_and_directory(values, coin)
    _check_services(values)
    _check_session_limits(values)
    _check_admin_shell(values)
    _check_donation_address(values, coin)
    if values["tor_banner_file"] is None:
        values["tor_banner_file"] = values["banner_file"]
    return Settings(**values)


def _lookup_coin(name, net):
    try:
        return lookup_coin(name, net)
    except CoinError as e:
        known_name = any(coin.NAME.lower() == name.lower() for coin in all_coins())
        raise ConfigError("NET" if known_name else "COIN", str(e)) from None


def _check_node_and_directory(values, coin):
    """DAEMON_URL and DB_DIRECTORY are required, except by --demo, which brings its own."""
    if values["demo"]:
        values["daemon_urls"] = []
    elif not values["daemon_url"]:
        raise ConfigError("DAEMON_URL", "is required (the node's RPC URL), unless --demo")
    else:
        if not values["daemon_cookie_file"]:
            values["daemon_cookie_file"] = default_cookie_path(coin)
        try:
            values["daemon_urls"] = parse_daemon_urls(values["daemon_url"], coin.RPC_PORT,
                                                      values["daemon_cookie_file"])
        except DaemonURLError as e:
            raise ConfigError("DAEMON_URL", str(e)) from None
    directory = values["db_directory"]
    if not directory:
        raise ConfigError("DB_DIRECTORY", "is required (where the index is kept), "
                                          "unless --demo")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ConfigError("DB_DIRECTORY", f"{directory!r} is not a directory")


def _check_services(values):
    values["services"] = served = parse_services(values["services"], "SERVICES")
    check_served(served, "SERVICES", values["rpc_allow_public"])
    values["report_services"] = reported = parse_services(values["report_services"],
                                                          "REPORT_SERVICES")
    check_reported(reported, "REPORT_SERVICES", values["peer_announce"],
                   values["peer_allow_loopback"])
    if any(service.is_tls for service in served):
        for name in ("SSL_CERTFILE", "SSL_KEYFILE"):
            if not values[name.lower()]:
                raise ConfigError(name, "is required to serve ssl or wss")
        check_tls_files(values["ssl_certfile"], values["ssl_keyfile"])


def _check_session_limits(values):
    """A hard cost limit is above the soft one (equal ones are one apart, as in ElectrumX).

    A hard limit of 0 turns cost throttling off altogether: the usual choice
    for a private server.
    """
    hard, soft = values["cost_hard_limit"], values["cost_soft_limit"]
    if not hard:
        return
    if hard < soft:
        raise ConfigError("COST_HARD_LIMIT", f"{hard} is below COST_SOFT_LIMIT ({soft}); "
                                             "0 turns throttling off")
    if hard == soft:
        values["cost_hard_limit"] += 1


def _check_donation_address(values, coin):
    """A donation address is one of this coin and network: wallets pay what they are shown."""
    address = values["donation_address"]
    if not address:
        return
    try:
        coin.address_to_script(address)
    except ValueError:
        raise ConfigError("DONATION_ADDRESS", f"{address!r} is not a {coin.NAME} {coin.NET} "
                                              "address") from None


def _check_admin_shell(values):
    """With ADMIN_SSH_PORT: keys to let in, a loopback address unless forced, a host key path."""
    if values["admin_ssh_port"] is None:
        return
    keys_file = values["admin_ssh_authorized_keys"]
    if not keys_file:
        raise ConfigError("ADMIN_SSH_AUTHORIZED_KEYS", "is required with ADMIN_SSH_PORT (the "
                                                      "public keys allowed into the admin "
                                                      "shell)")
    if not read_authorized_keys(keys_file):
        raise ConfigError("ADMIN_SSH_AUTHORIZED_KEYS", f"{keys_file!r} holds no public key "
                                                      "(OpenSSH authorized_keys lines)")
    host = values["admin_ssh_host"].strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    values["admin_ssh_host"] = host
    if not is_loopback(host) and not values["admin_ssh_allow_public"]:
        raise ConfigError("ADMIN_SSH_HOST", f"{host or '(every interface)'} is not a loopback "
                                            "address: the admin shell must not be public (set "
                                            "ADMIN_SSH_ALLOW_PUBLIC to force it)")
    if not values["admin_ssh_host_key"]:
        values["admin_ssh_host_key"] = os.path.join(values["db_directory"], "ssh_host_key")
