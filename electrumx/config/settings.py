"""Every setting the server reads, declared once: name, parser, default, help.

The names are ElectrumX's environment variables.  The command-line options
(`--cache-mb` for CACHE_MB) and `twistd electrumx --help` are generated from
this table, so adding a setting is adding one `Setting(...)` line, and its
typed attribute to `Settings`.  Its validation lives in its parser (see
`electrumx.config.parsers`); checks that involve several settings are in
`electrumx.config.loader`.
"""

import re
from dataclasses import dataclass, fields
from typing import Any, Callable, Union

from electrumx.coins import Bitcoin, Coin
from electrumx.config.daemon_url import DaemonURL
from electrumx.config.parsers import (IPNetwork, boolean, choice, db_engine, integer,
                                      log_level, networks, optional_text, port, readable_file,
                                      regex, text, zmq_url)
from electrumx.config.services import Service


@dataclass(frozen=True)
class CoinDefault:
    """A default taken from the coin class, for settings that differ by chain."""

    attribute: str

    def text(self, coin) -> str:
        value = getattr(coin, self.attribute)
        return "" if value is None else str(value)


@dataclass(frozen=True)
class Setting:
    """One setting: how to parse its text, its default text, and a line of help.

    Defaults are text and go through the same parser as given values, so a
    default can never be a value the parser would refuse.
    """

    name: str
    parse: Callable[[str, str], Any]
    default: Union[str, CoinDefault]
    help: str
    secret: bool = False        # never shown back (DAEMON_URL holds a password)

    @property
    def attribute(self) -> str:
        """The attribute of `Settings` holding the parsed value."""
        return self.name.lower()

    @property
    def option(self) -> str:
        """The long command-line option, without its dashes."""
        return self.name.lower().replace("_", "-")

    def default_text(self, coin) -> str:
        if isinstance(self.default, CoinDefault):
            return self.default.text(coin)
        return self.default

    def option_help(self) -> str:
        """The help line of the option: what it does, its variable and its default."""
        if isinstance(self.default, CoinDefault):
            default = (f"the coin's, {self.default.text(Bitcoin) or 'none'} for Bitcoin")
        else:
            default = self.default or "none"
        return f"{self.help} [{self.name}; default: {default}]"


SETTINGS = (
    # The chain and the node
    Setting("COIN", text, "Bitcoin", "coin name, e.g. Bitcoin or Litecoin"),
    Setting("NET", text, "mainnet", "network: mainnet, testnet, testnet4, signet or regtest"),
    Setting("DAEMON_URL", text, "", "the node's RPC URL, http://user:pass@host:port/ (or "
            "without user:pass@ to use the node's cookie, see DAEMON_COOKIE_FILE); "
            "comma-separated URLs fail over in turn; the port defaults to the coin's RPC port "
            "(required unless --demo)", secret=True),
    Setting("DAEMON_COOKIE_FILE", text, "", "the node's RPC cookie file, for DAEMON_URL "
            "entries without user and password; read again whenever the node refuses it "
            "(default: .cookie in the coin's default data directory of this user)"),
    Setting("DB_DIRECTORY", text, "", "directory of the index database (required unless "
            "--demo)"),
    Setting("DB_ENGINE", db_engine, "leveldb", "database engine: only leveldb"),
    Setting("CACHE_MB", integer(minimum=16), "1200",
            "memory for unflushed index changes during the initial sync, in MB: their "
            "Python objects and what LevelDB briefly holds to write them at a flush "
            "(about 2.5 times as much again); the server's own memory comes on top"),
    Setting("DB_BLOOM_BITS", integer(minimum=0, maximum=30), "0",
            "bits per key of LevelDB's bloom filter in each table file, which spares point "
            "reads of files without the key but not the seeks most of the index's reads are "
            "(0: no filter); applies to the files written from then on"),
    Setting("DB_BLOCK_CACHE_MB", integer(minimum=8, maximum=65536), "64",
            "LevelDB's cache of uncompressed table blocks, in MB, on top of the operating "
            "system's page cache"),
    Setting("DB_WRITE_BUFFER_MB", integer(minimum=1, maximum=1024), "16",
            "LevelDB's write buffer, in MB; it holds up to two at once (one filling, one "
            "being written to disk); 64 took about 15% less CPU in an initial sync, for "
            "some 40 MB more memory"),
    Setting("DB_COMPRESSION", choice("snappy", "none"), "snappy",
            "compression of LevelDB's table files: snappy or none (none: about a third less "
            "CPU in an initial sync, an index about 40% bigger); applies to the files "
            "written from then on"),
    Setting("TX_CACHE_MB", integer(minimum=0), "64",
            "memory for raw transactions served by blockchain.transaction.get, so repeated "
            "requests skip the node, in MB (0: no cache)"),
    Setting("REORG_LIMIT", integer(minimum=1), CoinDefault("REORG_LIMIT"),
            "deepest reorg the index can back out (blocks of undo data kept)"),
    Setting("DAEMON_POLL_INTERVAL_BLOCKS", integer(minimum=10), "5000",
            "how often to ask the node for new blocks, in ms"),
    Setting("DAEMON_POLL_INTERVAL_MEMPOOL", integer(minimum=10), "5000",
            "how often to refresh the mempool from the node, in ms"),
    Setting("ZMQ_BLOCK_URL", zmq_url, "", "the node's zmqpubhashblock endpoint "
            "(tcp://host:port): new blocks are fetched as soon as it announces them; polling "
            "stays as the fallback (empty: none)"),
    Setting("ZMQ_TX_URL", zmq_url, "", "the node's zmqpubrawtx endpoint: the mempool is "
            "refreshed as soon as a transaction is announced, so its notifications need not "
            "wait for DAEMON_POLL_INTERVAL_MEMPOOL (empty: none)"),
    Setting("ZMQ_SEQUENCE_URL", zmq_url, "", "the node's zmqpubsequence endpoint: blocks "
            "connected or disconnected and transactions added to or removed from the "
            "mempool, in one topic; does the work of both ZMQ_BLOCK_URL and ZMQ_TX_URL "
            "(empty: none)"),
    # Serving clients
    Setting("SERVICES", text, "", "what to serve: comma-separated proto://host:port with "
            "proto one of tcp, ssl, ws, wss, rpc; an empty host is every interface, IPv6 "
            "goes in brackets, rpc:// alone is rpc://localhost:8000"),
    Setting("RPC_ALLOW_PUBLIC", boolean, "no",
            "allow the admin rpc service on an address other than loopback"),
    Setting("SSL_CERTFILE", readable_file, "", "PEM certificate (and chain) for ssl and wss"),
    Setting("SSL_KEYFILE", readable_file, "", "unencrypted PEM private key for ssl and wss"),
    Setting("MAX_SESSIONS", integer(minimum=1), "1000", "most client sessions at once"),
    Setting("MAX_SEND", integer(minimum=350_000), CoinDefault("DEFAULT_MAX_SEND"),
            "largest response to a client, in bytes"),
    Setting("MAX_RECV", integer(minimum=800_100), "1000000", "largest client request in "
            "bytes (at least enough to broadcast the largest standard transaction)"),
    Setting("MAX_SUBS", integer(minimum=0), "250000",
            "most script and outpoint subscriptions across all sessions, 0 for no limit "
            "(live setting); a script subscribed by itself (protocol 1.7) counts once per "
            "128 bytes of script"),
    Setting("MAX_SESSION_SUBS", integer(minimum=0), "50000",
            "most script and outpoint subscriptions of one session, counted as for MAX_SUBS, "
            "0 for no limit (live setting)"),
    Setting("MAX_GROUP_SUBS", integer(minimum=0), "100000",
            "most script and outpoint subscriptions of one session group, counted as for "
            "MAX_SUBS, 0 for no limit"),
    Setting("COST_SOFT_LIMIT", integer(minimum=0), "1000",
            "session cost above which its requests are slowed"),
    Setting("COST_HARD_LIMIT", integer(minimum=0), "10000",
            "session cost at which the session is disconnected (0: no cost throttling "
            "at all, soft limit included)"),
    Setting("BANDWIDTH_UNIT_COST", integer(minimum=1), "5000",
            "bytes sent or received that add one unit of cost"),
    Setting("REQUEST_SLEEP", integer(minimum=0), "2500",
            "longest delay before a request of a costly session, in ms"),
    Setting("INITIAL_CONCURRENT", integer(minimum=1), "10",
            "concurrent requests of a session below the soft cost limit"),
    Setting("REQUEST_TIMEOUT", integer(minimum=1), "30", "seconds a request may take"),
    Setting("SESSION_TIMEOUT", integer(minimum=1), "600", "seconds an idle session is kept "
            "(a request, not any byte, ends idleness)"),
    Setting("HANDSHAKE_TIMEOUT", integer(minimum=1), "10", "seconds a new connection has to "
            "finish its TLS handshake and WebSocket upgrade"),
    Setting("UNIDENTIFIED_TIMEOUT", integer(minimum=1), "30", "seconds a session is kept "
            "before it sends server.version"),
    Setting("PARTIAL_REQUEST_TIMEOUT", integer(minimum=1), "30", "seconds a request may "
            "take to arrive, from its first byte to its end"),
    Setting("MAX_CLIENTS_PER_IP", integer(minimum=0), "12", "most connections at once from "
            "one IP address (IPv6: one /64), 0 for no limit"),
    Setting("SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS", networks, "127.0.0.0/8,::1",
            "comma-separated addresses and subnets free of MAX_CLIENTS_PER_IP (loopback: "
            "onion clients come from the local tor)"),
    Setting("SESSION_GROUP_BY_SUBNET_IPV4", integer(minimum=0, maximum=32), "24",
            "IPv4 prefix length whose sessions share costs"),
    Setting("SESSION_GROUP_BY_SUBNET_IPV6", integer(minimum=0, maximum=128), "48",
            "IPv6 prefix length whose sessions share costs"),
    Setting("DROP_CLIENT", regex, "", "regular expression of client versions to refuse"),
    Setting("BANNER_FILE", readable_file, "", "file of the banner shown to clients"),
    Setting("TOR_BANNER_FILE", readable_file, "",
            "file of the banner shown to Tor clients (default: BANNER_FILE)"),
    Setting("DONATION_ADDRESS", text, "", "address returned by server.donation_address"),
    # Peers and Tor
    Setting("REPORT_SERVICES", text, "", "services to advertise to peers and clients, "
            "comma-separated proto://host:port"),
    Setting("PEER_DISCOVERY", choice("on", "off", "self"), "on",
            "find and check peers: on, off, or self (only check ourselves)"),
    Setting("PEER_ANNOUNCE", boolean, "yes", "announce this server to its peers"),
    Setting("PEERS", text, "", "seed peers instead of the coin's: comma-separated "
            "'host s50002 t50001' entries (a bare s or t is the coin's default port)"),
    Setting("PEER_CHECK_SECS", integer(minimum=1), "3600",
            "seconds between two checks of a known peer"),
    Setting("PEER_ALLOW_LOOPBACK", boolean, "no",
            "for tests on one machine: accept, list and announce loopback peers "
            "(127.0.0.1, ::1)"),
    Setting("BLACKLIST_URL", optional_text, CoinDefault("BLACKLIST_URL"),
            "URL of a list of peers not to use"),
    Setting("IRC", boolean, "no", "announce this server on IRC (and, with PEER_DISCOVERY=on, "
            "take peers from the channel)"),
    Setting("IRC_NICK", text, "", "IRC nick after the coin's prefix (default: random)"),
    Setting("IRC_HOST", text, "irc.libera.chat", "IRC server"),
    Setting("IRC_PORT", integer(minimum=1, maximum=65535), "6667", "IRC server port"),
    Setting("IRC_CHANNEL", text, "#electrum", "IRC channel of the servers"),
    Setting("TOR_CONTROL", text, "", "serve as a Tor onion service through tor's control port: "
            "a client endpoint such as tcp:127.0.0.1:9051 or unix:/run/tor/control, or "
            "'launch' to start a tor (default: no onion service)"),
    Setting("TOR_CONTROL_PASSWORD", text, "", "password of tor's control port, if it uses "
            "HashedControlPassword (cookie authentication needs none)", secret=True),
    Setting("TOR_ONION_KEY_FILE", text, "", "file keeping the onion service's key, so its "
            "address stays the same (default: tor-onion-key in DB_DIRECTORY)"),
    Setting("TOR_PROXY_HOST", text, "localhost", "host of the Tor SOCKS proxy"),
    Setting("TOR_PROXY_PORT", port, "",
            "port of the Tor SOCKS proxy (unset: try 9050, 9150 and 1080)"),
    Setting("FORCE_PROXY", boolean, "no", "reach every peer through the Tor proxy"),
    # The admin shell (SSH)
    Setting("ADMIN_SSH_PORT", port, "", "port of the admin shell, a Python prompt in the "
            "server over SSH (unset: no shell)"),
    Setting("ADMIN_SSH_HOST", text, "127.0.0.1", "address the admin shell listens on"),
    Setting("ADMIN_SSH_ALLOW_PUBLIC", boolean, "no",
            "allow the admin shell on an address other than loopback"),
    Setting("ADMIN_SSH_AUTHORIZED_KEYS", readable_file, "", "OpenSSH authorized_keys file "
            "of the keys allowed into the admin shell, read at every login (required with "
            "ADMIN_SSH_PORT)"),
    Setting("ADMIN_SSH_HOST_KEY", text, "", "private SSH host key of the admin shell, made "
            "on first start (default: ssh_host_key in DB_DIRECTORY)"),
    # Logging and running
    Setting("LOG_LEVEL", log_level, "info", "least severe log events shown: debug, info, "
            "warning, error or critical"),
    Setting("LOG_SESSIONS", integer(minimum=0), "3600",
            "seconds between session summaries in the log (0: never)"),
    Setting("LOG_CLIENTS", boolean, "no", "log a line for each client session as it "
            "identifies itself: address, transport, client name, protocol version"),
    Setting("ANON_LOGS", boolean, "no", "leave client addresses out of the log"),
    Setting("ALLOW_ROOT", boolean, "no", "allow running as root"),
    Setting("DEMO_BLOCK_INTERVAL", integer(minimum=10), "30000",
            "with --demo, how often the built-in node makes a new block, in ms"),
    # Monitoring
    Setting("METRICS_PORT", port, "", "port of the Prometheus text /metrics, the status "
            "page / and its figures as JSON /stats (empty: off)"),
    Setting("METRICS_HOST", text, "127.0.0.1", "address the metrics port listens on; "
            "loopback by default, like the admin RPC, as the status page names clients "
            "and peers"),
)

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


@dataclass(slots=True, eq=False)
class Settings:
    """The parsed settings: one lowercase attribute per setting of the table.

    Each has the type its parser returns, but for the few the loader builds
    from more than their own text:

    - `coin`: the coin class (where COIN was its name), looked up with NET;
    - `services`, `report_services`: lists of `Service`;

    and two hold no setting of their own: `daemon_urls`, the DaemonURLs of
    DAEMON_URL (empty with --demo), and `demo`, whether `--demo` was given.

    Attributes stay assignable, for the settings the admin RPC changes live
    (MAX_SUBS, MAX_SESSION_SUBS, LOG_LEVEL).
    """

    # The chain and the node
    coin: type[Coin]
    net: str
    daemon_url: str
    daemon_cookie_file: str
    db_directory: str
    db_engine: str
    cache_mb: int
    db_bloom_bits: int
    db_block_cache_mb: int
    db_write_buffer_mb: int
    db_compression: str
    tx_cache_mb: int
    reorg_limit: int
    daemon_poll_interval_blocks: int
    daemon_poll_interval_mempool: int
    zmq_block_url: str | None
    zmq_tx_url: str | None
    zmq_sequence_url: str | None
    # Serving clients
    services: list[Service]
    rpc_allow_public: bool
    ssl_certfile: str | None
    ssl_keyfile: str | None
    max_sessions: int
    max_send: int
    max_recv: int
    max_subs: int
    max_session_subs: int
    max_group_subs: int
    cost_soft_limit: int
    cost_hard_limit: int
    bandwidth_unit_cost: int
    request_sleep: int
    initial_concurrent: int
    request_timeout: int
    session_timeout: int
    handshake_timeout: int
    unidentified_timeout: int
    partial_request_timeout: int
    max_clients_per_ip: int
    subnets_to_exclude_from_per_ip_limits: tuple[IPNetwork, ...]
    session_group_by_subnet_ipv4: int
    session_group_by_subnet_ipv6: int
    drop_client: re.Pattern[str] | None
    banner_file: str | None
    tor_banner_file: str | None
    donation_address: str
    # Peers and Tor
    report_services: list[Service]
    peer_discovery: str
    peer_announce: bool
    peers: str
    peer_check_secs: int
    peer_allow_loopback: bool
    blacklist_url: str | None
    irc: bool
    irc_nick: str
    irc_host: str
    irc_port: int
    irc_channel: str
    tor_control: str
    tor_control_password: str
    tor_onion_key_file: str
    tor_proxy_host: str
    tor_proxy_port: int | None
    force_proxy: bool
    # The admin shell (SSH)
    admin_ssh_port: int | None
    admin_ssh_host: str
    admin_ssh_allow_public: bool
    admin_ssh_authorized_keys: str | None
    admin_ssh_host_key: str
    # Logging and running
    log_level: str
    log_sessions: int
    log_clients: bool
    anon_logs: bool
    allow_root: bool
    demo_block_interval: int
    # Monitoring
    metrics_port: int | None
    metrics_host: str
    # Not settings of their own
    daemon_urls: list[DaemonURL]
    demo: bool

    def __repr__(self):
        hidden = {s.attribute for s in SETTINGS if s.secret}
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}
        return f"Settings({shown!r})"
