"""One listening endpoint as a Twisted service, with one policy when it cannot listen.

Every listener of the server (Electrum sessions, the admin RPC, metrics, the
admin shell) comes from an endpoint description string, so TCP, TLS, UNIX
sockets and Tor onion endpoints all take this same path.  A listener that
cannot listen (a busy port, an address not on this machine) calls its
`on_failure` with one line naming it and its address; the controller stops
the server with that line, so a server never runs on half its listeners.

`Listener` is Twisted's `StreamServerEndpointService` listening on a
`ReportingEndpoint`: the endpoint's listen reaches the service only after the
policy has seen it, so a failure is reported once, by us, and never logged
again as an unhandled error by the service.  A listen may take a while (an
onion endpoint waits for Tor); when the service is stopped meanwhile, it
cancels the Deferred the wrapper gave it, and the port the endpoint brings
later is closed at once.  Cancelling the endpoint's own Deferred instead
would drop that port, still listening, whenever it has no canceller.  Two
gaps of the base class are filled here: started again after a stop, it would
not listen again, and stopped before it started (when a service before it
failed to start), it would raise.
"""

from twisted.application import internet, service
from twisted.internet import address as addresses
from twisted.internet import defer, endpoints, error
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.web import server
from zope.interface import implementer

from electrumx.config.services import host_port
from electrumx.logs import Logger


@implementer(IStreamServerEndpoint)
class ReportingEndpoint:
    """`endpoint`, whose listen tells `on_port(port)` or `on_failure(failure)` first.

    The Deferred `listen` returns fires with the port, or with None once a
    failure was reported; if its taker cancels it before the endpoint is done,
    neither is called and a port that still comes is closed.
    """

    def __init__(self, endpoint, on_port, on_failure):
        self.endpoint = endpoint
        self.on_port = on_port
        self.on_failure = on_failure

    def listen(self, factory):
        listening = defer.Deferred()

        def listened(port):
            if listening.called:        # cancelled: the service stopped meanwhile
                return port.stopListening()
            self.on_port(port)
            listening.callback(port)
            return None

        def failed(failure):
            if not listening.called:
                self.on_failure(failure)
                listening.callback(None)

        self.endpoint.listen(factory).addCallbacks(listened, failed)
        return listening


class Listener(internet.StreamServerEndpointService):
    """Listens on `endpoint` with `factory` while running.

    `label` says what is served ("tcp", "admin-rpc", "metrics"...) and
    `address` where, as configured; both name it in the log.
    `on_failure(message)` is called once if it cannot listen.
    `on_listening(port)` and `on_stopping(port)` let an owner track its
    ports (the session manager pauses them at MAX_SESSIONS).
    """

    log = Logger()

    def __init__(self, endpoint, factory, label: str, address: str, on_failure,
                 on_listening=None, on_stopping=None):
        super().__init__(ReportingEndpoint(endpoint, self._listened, self._failed), factory)
        self.label = label
        self.address = address
        self.on_failure = on_failure
        self.on_listening = on_listening
        self.on_stopping = on_stopping
        self.port = None
        self.listen_asked = False
        """Whether this run asked for a listen yet: the base class's own mark is not
        cleared at a stop, so it would not listen again when started again."""

    @classmethod
    def serving(cls, reactor, label: str, served, factory, on_failure, *, tls=None,
                on_listening=None, on_stopping=None):
        """The listener of `served` (a config `Service`); TLS ones need `tls`, the
        server's connection creator (`electrumx.protocol.tls.ReloadableTLS`)."""
        if served.is_tls:
            endpoint = endpoints.SSL4ServerEndpoint(reactor, served.port, tls,
                                                    interface=served.host)
        else:
            endpoint = endpoints.serverFromString(reactor, served.endpoint_description())
        return cls(endpoint, factory, label, host_port(served.host, served.port), on_failure,
                   on_listening=on_listening, on_stopping=on_stopping)

    def privilegedStartService(self):
        """Listen now, before twistd gives up root, so a port below 1024 can be bound."""
        self.listen_asked = True
        super().privilegedStartService()

    def startService(self):
        service.Service.startService(self)
        if not self.listen_asked:       # no privileged start came first
            self.privilegedStartService()

    def _listened(self, port):
        self.port = port
        self.log_listening(port)
        if self.on_listening is not None:
            self.on_listening(port)

    def _failed(self, failure):
        self.on_failure(f"cannot listen for {self.label} on {self.address}: "
                        f"{listen_failure_reason(failure.value)}")

    def log_listening(self, port):
        """One line saying where we listen (a subclass may say more)."""
        self.log.info("serving {label} on {address}", label=self.label,
                      address=describe_address(port.getHost()))

    def stopService(self):
        if not self.listen_asked:       # never started: a start-up stopped before it
            return service.Service.stopService(self)
        self.listen_asked = False
        port, self.port = self.port, None
        if port is not None and self.on_stopping is not None:
            self.on_stopping(port)
        return super().stopService()


def listen_failure_reason(exception) -> str:
    """Why a listen failed, in a few words ("Address already in use")."""
    if isinstance(exception, error.CannotListenError):
        socket_error = exception.socketError
        if isinstance(socket_error, OSError) and socket_error.strerror:
            return socket_error.strerror
        return str(socket_error)
    return str(exception)


def describe_address(address) -> str:
    """`host:port` of a listening TCP address; any other address as Twisted prints it."""
    if isinstance(address, (addresses.IPv4Address, addresses.IPv6Address)):
        return host_port(address.host, address.port)
    return str(address)


class QuietSite(server.Site):
    """An HTTP site without an access-log line per request (WebSocket, metrics)."""

    noisy = False

    def log(self, request):
        pass
