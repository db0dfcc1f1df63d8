"""The settings reference, written from the SETTINGS table: docs/settings.rst and
contrib/electrumx.conf.

Both files are generated, so they cannot drift from what the server reads;
`tests/config/test_reference.py` fails when a committed copy is out of date.
Regenerate them with::

    python -m electrumx.config.reference

What the table does not hold lives here: the heading each group of settings
falls under, and an example value for every setting.
"""

import sys
import textwrap
from pathlib import Path

from electrumx.coins import Bitcoin
from electrumx.config.settings import SETTINGS, CoinDefault

SECTIONS = {
    "COIN": "The chain and the node",
    "SERVICES": "Serving clients",
    "REPORT_SERVICES": "Peers and Tor",
    "ADMIN_SSH_PORT": "The admin shell (SSH)",
    "LOG_LEVEL": "Logging and running",
    "METRICS_PORT": "Monitoring",
}
"""The first setting of each group, and the group's heading."""

EXAMPLES = {
    "COIN": "Litecoin",
    "NET": "testnet4",
    "DAEMON_URL": "http://electrumx:s3cret@127.0.0.1:8332/,http://electrumx:s3cret@10.0.0.2/",
    "DAEMON_COOKIE_FILE": "/var/lib/bitcoind/.cookie",
    "DB_DIRECTORY": "/var/lib/electrumx",
    "DB_ENGINE": "leveldb",
    "CACHE_MB": "2000",
    "DB_BLOOM_BITS": "10",
    "DB_BLOCK_CACHE_MB": "256",
    "DB_WRITE_BUFFER_MB": "64",
    "DB_COMPRESSION": "none",
    "TX_CACHE_MB": "256",
    "REORG_LIMIT": "1000",
    "DAEMON_POLL_INTERVAL_BLOCKS": "1000",
    "DAEMON_POLL_INTERVAL_MEMPOOL": "1000",
    "ZMQ_BLOCK_URL": "tcp://127.0.0.1:28332",
    "ZMQ_TX_URL": "tcp://127.0.0.1:28333",
    "ZMQ_SEQUENCE_URL": "tcp://127.0.0.1:28336",
    "SERVICES": "tcp://:50001,ssl://:50002,wss://:50004,rpc://",
    "RPC_ALLOW_PUBLIC": "no",
    "SSL_CERTFILE": "/etc/letsencrypt/live/electrum.example.com/fullchain.pem",
    "SSL_KEYFILE": "/etc/letsencrypt/live/electrum.example.com/privkey.pem",
    "MAX_SESSIONS": "5000",
    "MAX_SEND": "4000000",
    "MAX_RECV": "2000000",
    "MAX_SUBS": "1000000",
    "MAX_SESSION_SUBS": "100000",
    "MAX_GROUP_SUBS": "200000",
    "COST_SOFT_LIMIT": "2000",
    "COST_HARD_LIMIT": "0",
    "BANDWIDTH_UNIT_COST": "10000",
    "REQUEST_SLEEP": "1000",
    "INITIAL_CONCURRENT": "20",
    "REQUEST_TIMEOUT": "60",
    "SESSION_TIMEOUT": "300",
    "HANDSHAKE_TIMEOUT": "20",
    "UNIDENTIFIED_TIMEOUT": "60",
    "PARTIAL_REQUEST_TIMEOUT": "60",
    "MAX_CLIENTS_PER_IP": "24",
    "SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS": "127.0.0.0/8,::1,10.8.0.0/16",
    "SESSION_GROUP_BY_SUBNET_IPV4": "16",
    "SESSION_GROUP_BY_SUBNET_IPV6": "56",
    "DROP_CLIENT": r"^electrum/[0-3]\.",
    "BANNER_FILE": "/etc/electrumx/banner.txt",
    "TOR_BANNER_FILE": "/etc/electrumx/tor-banner.txt",
    "DONATION_ADDRESS": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "REPORT_SERVICES": "tcp://electrum.example.com:50001,ssl://electrum.example.com:50002",
    "PEER_DISCOVERY": "self",
    "PEER_ANNOUNCE": "no",
    "PEERS": "electrum.blockstream.info s50002 t50001,electrumx.example.org s",
    "PEER_CHECK_SECS": "7200",
    "PEER_ALLOW_LOOPBACK": "yes",
    "BLACKLIST_URL": "https://example.com/blacklist.json",
    "IRC": "yes",
    "IRC_NICK": "myserver",
    "IRC_HOST": "irc.example.net",
    "IRC_PORT": "6697",
    "IRC_CHANNEL": "#electrum-test",
    "TOR_CONTROL": "unix:/run/tor/control",
    "TOR_CONTROL_PASSWORD": "hunter2",
    "TOR_ONION_KEY_FILE": "/var/lib/electrumx/onion.key",
    "TOR_PROXY_HOST": "127.0.0.1",
    "TOR_PROXY_PORT": "9050",
    "FORCE_PROXY": "yes",
    "ADMIN_SSH_PORT": "8022",
    "ADMIN_SSH_HOST": "::1",
    "ADMIN_SSH_ALLOW_PUBLIC": "no",
    "ADMIN_SSH_AUTHORIZED_KEYS": "/etc/electrumx/admin_keys",
    "ADMIN_SSH_HOST_KEY": "/etc/electrumx/ssh_host_key",
    "LOG_LEVEL": "warning",
    "LOG_SESSIONS": "600",
    "LOG_CLIENTS": "yes",
    "ANON_LOGS": "yes",
    "ALLOW_ROOT": "no",
    "DEMO_BLOCK_INTERVAL": "5000",
    "METRICS_PORT": "9100",
    "METRICS_HOST": "0.0.0.0",
}
"""One plausible value of every setting, shown in the reference."""

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_RST = ROOT / "docs" / "settings.rst"
EXAMPLE_CONF = ROOT / "contrib" / "electrumx.conf"


def default_text(setting) -> str:
    """The default as the reference shows it."""
    if isinstance(setting.default, CoinDefault):
        bitcoin = setting.default.text(Bitcoin)
        return f"the coin's; Bitcoin's is ``{bitcoin}``" if bitcoin else "the coin's"
    return f"``{setting.default}``" if setting.default else "none"


def grouped():
    """[(heading, [settings])] in table order."""
    groups = []
    for setting in SETTINGS:
        if setting.name in SECTIONS or not groups:
            groups.append((SECTIONS.get(setting.name, "Settings"), []))
        groups[-1][1].append(setting)
    return groups


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def settings_rst() -> str:
    """The text of docs/settings.rst."""
    lines = [
        "========", "Settings", "========", "",
        ".. Generated by `python -m electrumx.config.reference` from the SETTINGS table in",
        "   electrumx/config/settings.py: edit that, not this file.", "",
        "Every setting can be given three ways: as an environment variable (its name",
        "below, as in ElectrumX), as a ``twistd electrumx`` option, or as a",
        "``NAME=VALUE`` line in the file given with ``--config`` (see",
        "``contrib/electrumx.conf``).  An option wins over the environment, and the",
        "environment over the file.  A bad value stops the server before it writes",
        "anything, with one line naming the setting.", "",
    ]
    for heading, settings in grouped():
        lines += [heading, "=" * len(heading), ""]
        for setting in settings:
            lines += [f"``{setting.name}``",
                      *textwrap.wrap(_sentence(setting.help), 84, initial_indent="    ",
                                     subsequent_indent="    "), "",
                      f"    :option: ``--{setting.option}``",
                      f"    :default: {default_text(setting)}",
                      f"    :example: ``{setting.name}={EXAMPLES[setting.name]}``", ""]
    return "\n".join(lines)


def example_conf() -> str:
    """The text of contrib/electrumx.conf: every setting, commented out at its default."""
    lines = [
        "# txelectrumx configuration: pass it with `twistd electrumx --config FILE`, or use",
        "# it as a systemd EnvironmentFile.  One NAME=VALUE per line; lines starting with #",
        "# are comments.  Every setting is listed at its default, commented out: uncomment",
        "# and change what you need.  The environment and command-line options win over",
        "# this file.  Generated by `python -m electrumx.config.reference`; the full",
        "# reference is docs/settings.rst.",
    ]
    for heading, settings in grouped():
        lines += ["", "", f"# ---- {heading} " + "-" * max(0, 72 - len(heading)), ""]
        for setting in settings:
            lines += textwrap.wrap(_sentence(setting.help), 86, initial_indent="# ",
                                   subsequent_indent="# ")
            if isinstance(setting.default, CoinDefault):
                lines.append("# Default: the coin's; Bitcoin's is shown.")
            lines.append(f"#{setting.name}={setting.default_text(Bitcoin)}")
            lines.append("")
    return "\n".join(lines)


def main(argv=None):
    """Write both files (or, with --check, exit 1 if either is out of date)."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for path, text in ((SETTINGS_RST, settings_rst()), (EXAMPLE_CONF, example_conf())):
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        sys.exit(f"out of date: {', '.join(stale)}; run python -m electrumx.config.reference")


if __name__ == "__main__":
    main()
