"""All client sessions: counting, the MAX_SESSIONS cap, groups, idle timeouts, listeners.

At MAX_SESSIONS the listeners stop accepting; they resume when the count
falls to 95% of it.  MAX_SESSIONS is lowered to what the process's open-file
limit allows.  Every listener admits at most MAX_CLIENTS_PER_IP connections
from one address (see `admission`).  A session idle for SESSION_TIMEOUT is
closed (one that never sent server.version closes itself sooner).  Each
session joins the group of its subnet (see `session_groups`).  Every
LOG_SESSIONS seconds one log line sums up the sessions and their traffic.
"""

import resource


from twisted.application import service

from electrumx.listener import Listener
from electrumx.logs import Logger
from electrumx.protocol.admission import AdmissionFactory, PerAddressLimit
from electrumx.protocol.bans import BanList, address_in
from electrumx.protocol.send_budget import PAUSED_BUDGET_SENDS, PausedSendBudget
from electrumx.protocol.session_groups import REFUND_INTERVAL_SECS, SessionGroups
from electrumx.protocol.stats import ClientCensus, ServerStats
from electrumx.protocol.stream_session import ElectrumFactory
from electrumx.protocol.tls import ReloadableTLS
from electrumx.protocol.version import version_string
from electrumx.protocol.websocket_limits import LimitedWebSocketSite
from electrumx.protocol.websocket_session import WebSocketFactory
from electrumx.protocol.websocket_site import WebSocketSite
from electrumx.timers import timer_service


CLIENT_PROTOCOLS = ("tcp", "ssl", "ws", "wss")


def client_services(services) -> list:
    """The services of SERVICES that clients connect to (rpc:// is the admin interface)."""
    return [svc for svc in services if svc.protocol in CLIENT_PROTOCOLS]


class SessionManager(service.MultiService):
    """Owns the sessions and the Electrum listeners (a Twisted service)."""

    log = Logger()
    IDLE_CHECK_SECS = 60.0

    def __init__(self, settings, methods, clock, bans=None):
        super().__init__()
        self.setName("sessions")
        self.settings = settings
        self.methods = methods
        self.clock = clock
        self.sessions = {}
        self.stats = ServerStats()
        self.census = ClientCensus()
        self.bans = bans if bans is not None else BanList()
        self.max_sessions = capped_max_sessions(settings.max_sessions, self.log)
        self.max_buffered = 2 * settings.max_send
        self.send_budget = PausedSendBudget(clock, PAUSED_BUDGET_SENDS * settings.max_send)
        self._next_id = 0
        self.ports = []
        self._paused = False
        served_tls = any(svc.is_tls for svc in client_services(settings.services))
        self.tls = (ReloadableTLS(settings.ssl_certfile, settings.ssl_keyfile, clock)
                    if served_tls else None)
        """What the ssl and wss listeners serve: reloaded on SIGHUP and when its files
        change."""
        self._last_summary = None
        self.groups = SessionGroups(clock, ipv4_bits=settings.session_group_by_subnet_ipv4,
                                    ipv6_bits=settings.session_group_by_subnet_ipv6,
                                    hard_limit=settings.cost_hard_limit)
        self.admission = PerAddressLimit(clock, settings.max_clients_per_ip,
                                         settings.subnets_to_exclude_from_per_ip_limits,
                                         settings.anon_logs)
        websocket = LimitedWebSocketSite(WebSocketSite(
            WebSocketFactory(self), clock, settings.handshake_timeout, self.stats), clock)
        self.factories = {"tcp": ElectrumFactory(self), "ssl": ElectrumFactory(self, tls=True),
                          "ws": websocket, "wss": websocket}
        """The factory of each client protocol's listeners; every listener wraps it in
        an AdmissionFactory of its own, counting against the shared `admission`."""
        self._every(self.IDLE_CHECK_SECS, self.close_idle_sessions)
        self._every(REFUND_INTERVAL_SECS, self.groups.refund_retained)
        if settings.log_sessions:
            self._every(settings.log_sessions, self.log_summary)

    def _every(self, secs: float, call):
        """Call `call` every `secs` while the service runs (first as it starts)."""
        timer_service(self.clock, secs, call).setServiceParent(self)

    # ---- listeners -------------------------------------------------------

    def add_listeners(self, reactor, on_failure):
        """One listener per client service of SERVICES; `on_failure(message)` if one
        cannot listen."""
        settings = self.settings
        for svc in client_services(settings.services):
            factory = AdmissionFactory(self.factories[svc.protocol], self.admission)
            Listener.serving(reactor, svc.protocol, svc, factory, on_failure, tls=self.tls,
                             on_listening=self.listening, on_stopping=self.ports.remove,
                             ).setServiceParent(self)

    def listening(self, port):
        self.ports.append(port)
        if self._paused:
            port.stopReading()

    def startService(self):
        super().startService()
        if self.tls is not None:
            self.tls.start_watching()

    def stopService(self):
        if self.tls is not None:
            self.tls.stop_watching()
        for session in list(self.sessions.values()):
            session.close()
        # The timers stop with it (a parent stops its children whether they started
        # or not, and a TimerService that never started cannot stop).
        return super().stopService() if self.running else None

    # ---- sessions --------------------------------------------------------

    def next_session_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def full(self) -> bool:
        return len(self.sessions) >= self.max_sessions

    def refuses(self, host: str) -> bool:
        """True when a new connection from `host` must be turned away."""
        return self.full() or self.bans.is_banned(host)

    def ban(self, text: str):
        """Ban an address or subnet and close its sessions; returns the sessions closed."""
        network = self.bans.ban(text)
        return self.close_sessions(lambda s: address_in(s.remote_address, [network]))

    def close_sessions(self, predicate) -> list:
        """Close every session `predicate` picks; their ids."""
        chosen = [s for s in self.sessions.values() if predicate(s)]
        for session in chosen:
            session.close()
        return [s.session_id for s in chosen]

    def session_opened(self, session):
        self.sessions[session.session_id] = session
        session.is_tor = self.methods.is_tor_client(session.remote_address)
        self.stats.sessions_opened += 1
        session.group = self.groups.join(session)
        if self.full() and not self._paused:
            self._paused = True
            for port in self.ports:
                port.stopReading()
            self.log.info("{count} sessions: MAX_SESSIONS reached, not accepting",
                          count=len(self.sessions))

    def session_closed(self, session):
        if self.sessions.pop(session.session_id, None) is None:
            return
        self.census.closed(session.session_id)
        self.groups.leave(session, session.group)
        self.methods.session_closed(session)
        if self._paused and len(self.sessions) <= self.max_sessions * 0.95:
            self._paused = False
            for port in self.ports:
                port.startReading()
            self.log.info("{count} sessions: accepting again", count=len(self.sessions))

    def session_identified(self, session):
        """The session's client sent server.version: it has its name and protocol."""
        if session.session_id in self.sessions:        # not closed meanwhile
            self.census.identified(session.session_id, session.protocol_version,
                                   session.client_name)
        if self.settings.log_clients:
            self.log.info("session {id}: {address} {kind}, client {client!r}, protocol "
                          "{protocol}, {count:,d} sessions", id=session.session_id,
                          address=self.loggable_address(session), kind=session.kind,
                          client=session.client_name[:80],
                          protocol=version_string(session.protocol_version),
                          count=len(self.sessions))

    def loggable_address(self, session) -> str:
        """The client's address for the log: hidden under ANON_LOGS."""
        return "xx.xx.xx.xx" if self.settings.anon_logs else session.remote_address

    def log_summary(self):
        """One line on the sessions and what they did since the last summary (the
        first call, as the service starts, only takes the counts to start from)."""
        stats = self.stats
        now = (sum(stats.requests.values()), sum(stats.errors.values()),
               stats.bytes_received, stats.bytes_sent)
        last, self._last_summary = self._last_summary, now
        if last is None:
            return
        requests, errors, received, sent = (a - b for a, b in zip(now, last))
        self.log.info("{count:,d} sessions in {groups:,d} groups with {subs:,d} "
                      "subscriptions; in the last {secs}s {requests:,d} requests, "
                      "{errors:,d} errors, {received:,d} bytes in, {sent:,d} bytes out",
                      count=len(self.sessions), groups=len(self.groups.groups),
                      subs=self.methods.subscriptions.subscription_count,
                      secs=self.settings.log_sessions, requests=requests,
                      errors=errors, received=received, sent=sent)

    def close_idle_sessions(self):
        """Close the sessions idle for SESSION_TIMEOUT; one still closing since the last
        sweep (its client not reading what is left) is aborted by its second close."""
        cutoff = self.clock.seconds() - self.settings.session_timeout
        for session in [s for s in self.sessions.values() if s.last_activity < cutoff]:
            session.close()


FILES_KEPT_FREE = 350
"""Open files left for the index, the node client and peers, as ElectrumX leaves."""


def capped_max_sessions(configured: int, log) -> int:
    """MAX_SESSIONS, lowered if the open-file limit cannot hold that many sockets.

    The soft limit is first raised as far as the hard limit allows.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = configured + FILES_KEPT_FREE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return configured
    capped = max(1, soft - FILES_KEPT_FREE)
    log.warn("MAX_SESSIONS lowered from {configured:,d} to {capped:,d}: the open-file "
             "limit is {soft:,d} (raise it with ulimit -n)", configured=configured,
             capped=capped, soft=soft)
    return capped
