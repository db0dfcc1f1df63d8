"""All client sessions: counting, the MAX_SESSIONS cap, groups, idle timeouts, listeners.

At MAX_SESSIONS the listeners stop accepting; they resume when the count
falls to 95% of it.  Idle sessions are closed after SESSION_TIMEOUT.  Each
session joins the group of its subnet (see `session_groups`).
"""

from twisted.application import service
from twisted.internet import endpoints, task

from electrumx.logs import Logger
from twisted.web import server
from twisted.web.websocket import WebSocketResource

from electrumx.protocol.session import ElectrumFactory, WebSocketFactory
from electrumx.protocol.session_groups import REFUND_INTERVAL_SECS, SessionGroups

STREAM_PROTOCOLS = ("tcp", "ssl")
WEBSOCKET_PROTOCOLS = ("ws", "wss")


class SessionManager(service.MultiService):
    """Owns the sessions and the Electrum listeners (a Twisted service)."""

    log = Logger()
    name = "sessions"
    IDLE_CHECK_SECS = 60.0

    def __init__(self, settings, methods, clock):
        super().__init__()
        self.settings = settings
        self.methods = methods
        self.clock = clock
        self.sessions = {}
        self.max_buffered = 2 * settings.max_send
        self._next_id = 0
        self.ports = []
        self._paused = False
        self._idle_loop = None
        self._refund_loop = None
        self.groups = SessionGroups(clock, ipv4_bits=settings.session_group_by_subnet_ipv4,
                                    ipv6_bits=settings.session_group_by_subnet_ipv6,
                                    hard_limit=settings.cost_hard_limit)
        self.factory = ElectrumFactory(self)
        websocket = WebSocketResource(WebSocketFactory(self))
        websocket.isLeaf = True             # clients connect to any path, "/" included
        self.websocket_site = _QuietSite(websocket)

    # ---- listeners -------------------------------------------------------

    def add_listeners(self, reactor):
        """One endpoint service per served SERVICES entry."""
        settings = self.settings
        for svc in settings.services:
            if svc.protocol in STREAM_PROTOCOLS:
                factory = self.factory
            elif svc.protocol in WEBSOCKET_PROTOCOLS:
                factory = self.websocket_site
            else:
                continue        # rpc:// is the admin interface, not a client service
            description = svc.endpoint_description(settings.ssl_certfile, settings.ssl_keyfile)
            endpoint = endpoints.serverFromString(reactor, description)
            Listener(endpoint, factory, svc, self).setServiceParent(self)

    def listening(self, port, svc):
        self.ports.append(port)
        if self._paused:
            port.stopReading()
        self.log.info("serving {service} on {address}", service=svc.protocol,
                      address=port.getHost())

    def startService(self):
        super().startService()
        self._idle_loop = task.LoopingCall(self.close_idle_sessions)
        self._idle_loop.clock = self.clock
        self._idle_loop.start(self.IDLE_CHECK_SECS, now=False)
        self._refund_loop = task.LoopingCall(self.groups.refund_retained)
        self._refund_loop.clock = self.clock
        self._refund_loop.start(REFUND_INTERVAL_SECS, now=False)

    def stopService(self):
        for loop in (self._idle_loop, self._refund_loop):
            if loop is not None and loop.running:
                loop.stop()
        for session in list(self.sessions.values()):
            session.close()
        return super().stopService()

    # ---- sessions --------------------------------------------------------

    def next_session_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def full(self) -> bool:
        return len(self.sessions) >= self.settings.max_sessions

    def session_opened(self, session):
        self.sessions[session.session_id] = session
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
        self.groups.leave(session, session.group)
        self.methods.session_closed(session)
        if self._paused and len(self.sessions) <= self.settings.max_sessions * 0.95:
            self._paused = False
            for port in self.ports:
                port.startReading()
            self.log.info("{count} sessions: accepting again", count=len(self.sessions))

    def close_idle_sessions(self):
        cutoff = self.clock.seconds() - self.settings.session_timeout
        for session in [s for s in self.sessions.values() if s.last_activity < cutoff]:
            session.close()


class _QuietSite(server.Site):
    """The WebSocket listener's HTTP side, without an access-log line per connection."""

    noisy = False

    def log(self, request):
        pass


class Listener(service.Service):
    """Listens on one endpoint while running; the port is closed when stopped."""

    log = Logger()

    def __init__(self, endpoint, factory, svc, manager):
        self.endpoint = endpoint
        self.factory = factory
        self.svc = svc
        self.manager = manager
        self.port = None

    def startService(self):
        super().startService()
        d = self.endpoint.listen(self.factory)
        d.addCallback(self._listening)
        d.addErrback(lambda f: self.log.critical("cannot listen for {service}: {error}",
                                                 service=str(self.svc), error=f.value))

    def _listening(self, port):
        self.port = port
        self.manager.listening(port, self.svc)

    def stopService(self):
        super().stopService()
        if self.port is not None:
            self.manager.ports.remove(self.port)
            return self.port.stopListening()
        return None
