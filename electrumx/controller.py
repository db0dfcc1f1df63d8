"""The service tree: what `twistd electrumx` runs, built from the settings.

    electrumx (Controller, a MultiService)
    ├── regtest-node     only with --demo: the built-in chain, in-process
    ├── indexer          daemon -> prefetcher -> block processor -> LevelDB; mempool
    ├── zmq              only with ZMQ_*_URL: the node's notifications poke the indexer
    ├── sessions         the Electrum listeners, started once the index caught up
    ├── admin-rpc        the rpc:// services (loopback), from start-up
    ├── metrics          if METRICS_PORT is set: /metrics for Prometheus, the status
    │                    page at /, its figures at /stats (electrumx/admin/web.py)
    ├── admin-shell      only with ADMIN_SSH_PORT: the SSH manhole (electrumx/admin/shell.py)
    ├── peers            peer discovery (unless PEER_DISCOVERY=off), once we listen
    ├── irc              (IRC=yes) the IRC announcer, started with peer discovery
    ├── onion            (TOR_CONTROL) our listeners as an onion service, also then
    ├── StopOnSignals    only under twistd: SIGTERM, SIGINT stop cleanly (electrumx/shutdown.py)
    └── ReloadOnHangup   only under twistd: SIGHUP reloads the TLS certificate (hangup.py)

Data flows one way: the indexer tells the `ChainReader` which scripts changed,
and the reader, once it has forgotten the answers the change made stale, tells the
subscription registry; readers go through the `ChainReader` and never reach back.

An error that stops a part of the tree stops the whole server, with one log
line and exit status 1 (`Controller.fatal`): an index another process holds, a
port that cannot be bound (an admin port at start-up, a client port once the
index caught up), a service that fails to start.  A server never runs on half
its parts, and nothing starts after the part that failed.
"""

import os

from twisted.application import service
from twisted.logger import LogLevel

from electrumx.admin.commands import AdminCommands
from electrumx.admin.rpc_server import AdminFactory
from electrumx.admin.shell import AdminShellService, shell_namespace
from electrumx.admin.web import monitoring_site_root
from electrumx.config.daemon_url import parse_daemon_url
from electrumx.config.services import Service
from electrumx.index.daemon import Daemon
from electrumx.index.db import IndexDB, LevelDBOptions
from electrumx.index.indexer import Indexer
from electrumx.index.mempool import MemPool
from electrumx.index.read_api import ChainReader
from electrumx.index.zmq_watch import ZmqWatcher
from electrumx.listener import Listener, QuietSite
from electrumx.logs import Logger
from electrumx.network.directory import NoPeers
from electrumx.network.irc import IRCAnnouncer
from electrumx.network.manager import PeerManager
from electrumx.network.onion import OnionService
from electrumx.protocol.bans import BanList
from electrumx.protocol.methods import ElectrumMethods
from electrumx.protocol.session_manager import SessionManager, client_services
from electrumx.protocol.subscriptions import SubscriptionRegistry
from electrumx.shutdown import exit_after_shutdown
from electrumx.systemd import SystemdNotifier
from electrumx.timers import timer_service

log = Logger()

SYSTEMD_STATUS_SECS = 10.0
"""How often `systemctl status` gets the server's status line (as often as the sync's
progress is logged)."""


def leveldb_options(settings) -> LevelDBOptions:
    """How the index's LevelDB is opened, from the DB_* settings."""
    return LevelDBOptions(bloom_bits=settings.db_bloom_bits,
                          block_cache_mb=settings.db_block_cache_mb,
                          write_buffer_mb=settings.db_write_buffer_mb,
                          compression=settings.db_compression)


class Controller(service.MultiService):
    """The top of the service tree; holds the parts other services and admin tools use."""

    def __init__(self, settings, reactor):
        super().__init__()
        self.setName("electrumx")
        self.settings = settings
        self.reactor = reactor
        self.exit_code = 0
        coin = settings.coin
        self.daemon = Daemon(reactor, settings.daemon_urls)
        self.db = IndexDB(settings.db_directory, coin, leveldb_options(settings))
        self.mempool = MemPool(coin, self.db, self.daemon, clock=reactor)
        self.indexer = Indexer(
            self.db, self.daemon, self.mempool, reactor,
            cache_mb=settings.cache_mb, reorg_limit=settings.reorg_limit,
            block_poll_secs=settings.daemon_poll_interval_blocks / 1000,
            mempool_poll_secs=settings.daemon_poll_interval_mempool / 1000,
            on_fatal=self.fatal)
        self.reader = ChainReader(self.db, self.mempool, self.daemon,
                                  tx_cache_bytes=settings.tx_cache_mb * 1024 * 1024)
        # The registry listens to the reader, which tells it of a change once it has
        # forgotten the answers the change made stale.
        self.subscriptions = SubscriptionRegistry.from_settings(self.reader, settings)
        self.indexer.add_listener(self.reader.on_index_change)
        self.peers = (PeerManager(settings, self.reader, reactor)
                      if settings.peer_discovery != "off" else None)
        self.methods = ElectrumMethods(reader=self.reader, settings=settings,
                                       subscriptions=self.subscriptions,
                                       peers=NoPeers() if self.peers is None else self.peers,
                                       clock=reactor)
        bans = BanList(os.path.join(settings.db_directory, "bans.json"))
        self.sessions = SessionManager(settings, self.methods, reactor, bans)
        self.admin = AdminCommands(self)
        self.systemd = SystemdNotifier()
        self._systemd_status = timer_service(reactor, SYSTEMD_STATUS_SECS, self._tell_systemd)
        if settings.demo:
            self._add_demo_node()
        self.indexer.setServiceParent(self)
        self.zmq = ZmqWatcher.from_settings(settings, reactor, self.indexer.block_announced,
                                            self.indexer.mempool_announced)
        if self.zmq is not None:
            self.zmq.setServiceParent(self)
        self.sessions.setServiceParent(self)
        self._add_admin_listeners()
        if settings.admin_ssh_port is not None:
            AdminShellService.from_settings(settings, reactor, lambda: shell_namespace(self),
                                            self.fatal).setServiceParent(self)
        if self.peers is not None:
            self.peers.setServiceParent(self)
        # Clients are served only once the index has caught up with the node, and peers
        # are checked (and told of us) only once we serve.
        self.indexer.when_caught_up().addCallback(self._serve)

    def _serve(self, _height):
        self.sessions.add_listeners(self.reactor, self.fatal)
        if self.settings.demo and not self.exit_code:
            from electrumx.regtest.demo import log_wallet_instructions
            log_wallet_instructions(self.settings.services)
        if not self.exit_code:          # every client port listens
            self.systemd.ready(self.status_line())
        if self.settings.tor_control:
            OnionService(self.settings, self.reactor).setServiceParent(self)
        if self.peers is not None:
            self.peers.start_discovery()
        if self.settings.irc:
            self._start_irc()

    def _start_irc(self):
        announcer = IRCAnnouncer(self.settings, self.peers, self.reactor)
        if announcer.realname is None:
            log.warn("IRC: not announcing: REPORT_SERVICES has no host peers can reach "
                     "(or PEER_ANNOUNCE=no)")
            return
        announcer.setServiceParent(self)

    def _add_demo_node(self):
        """Start the built-in regtest node first, and point the daemon client at it."""
        from electrumx.regtest.demo import BLOCKS_FILE, demo_node_service
        coin = self.settings.coin

        def listening(running):
            self.daemon.set_urls([parse_daemon_url(running.url, coin.RPC_PORT)])

        demo_node_service(self.reactor, self.settings.demo_block_interval / 1000, listening,
                          os.urandom(16).hex(),
                          os.path.join(self.settings.db_directory, BLOCKS_FILE)
                          ).setServiceParent(self)

    def _add_admin_listeners(self):
        """The admin RPC on each rpc:// service, and the metrics port's site."""
        settings = self.settings
        for svc in settings.services:
            if svc.protocol == "rpc":
                self._listen("admin-rpc", svc, AdminFactory(self.admin))
        if settings.metrics_port is not None:
            self._listen("metrics", Service("tcp", settings.metrics_host, settings.metrics_port),
                         QuietSite(monitoring_site_root(self)))

    def _listen(self, label, served, factory):
        Listener.serving(self.reactor, label, served, factory, self.fatal).setServiceParent(self)

    def privilegedStartService(self):
        service.Service.privilegedStartService(self)
        self._start_children(lambda child: child.privilegedStartService())

    def startService(self):
        service.Service.startService(self)
        self._start_children(lambda child: child.startService())
        if self.systemd.enabled and not self.exit_code:
            self._systemd_status.startService()
        if not self.exit_code and not client_services(self.settings.services):
            log.warn("SERVICES has no tcp, ssl, ws or wss service: the server will index the "
                     "chain and serve no client")

    def _start_children(self, start):
        """Start the children in order, up to the first that fails, whether it raises or
        calls `fatal`: the rest would only be stopped again at once."""
        for child in self:
            if self.exit_code:
                return
            try:
                start(child)
            except Exception as e:
                name = child.name or type(child).__name__
                log.failure("cannot start {name}", name=name, level=LogLevel.debug)
                self.fatal(f"cannot start {name}: {e}")

    def stopService(self):
        self.systemd.stopping()
        if self._systemd_status.running:
            self._systemd_status.stopService()
        d = super().stopService()
        d.addBoth(lambda result: (self.daemon.close(), result)[1])
        return d

    def status_line(self) -> str:
        """One line on what the server is doing: for systemd (`systemctl status`)."""
        indexer = self.indexer
        if not indexer.is_caught_up:
            return f"syncing: {indexer.progress_line() or 'starting'}"
        behind = ", waiting for the node to catch up" if indexer.node_behind else ""
        return (f"serving at height {self.db.height:,d}, {len(self.sessions.sessions):,d} "
                f"sessions{behind}")

    def _tell_systemd(self):
        self.systemd.status(self.status_line())

    def reload(self):
        """What SIGHUP does: load the TLS certificate and key again."""
        if self.sessions.tls is not None:
            self.sessions.tls.reload("SIGHUP")

    def fatal(self, message: str):
        """Stop the server with exit status 1, after a clean shutdown.

        Also during start-up, before twistd runs the reactor: the shutdown then
        begins as soon as it runs.
        """
        log.critical("stopping: {message}", message=message)
        if self.exit_code:
            return
        self.exit_code = 1
        exit_after_shutdown(self.reactor, 1)


def build_service(settings, reactor=None):
    """The root service for `twistd electrumx`."""
    if reactor is None:
        from twisted.internet import reactor
    return Controller(settings, reactor)
