"""One listening endpoint as a Twisted service, with one policy when it cannot listen.

Every listener of the server (Electrum sessions, the admin RPC, metrics, the
admin shell) comes from an endpoint description string, so TCP, TLS, UNIX
sockets and Tor onion endpoints all take this same path.  A listener that
cannot listen (a busy port, an address not on this machine) calls its
`on_failure` with one line naming it and its address; the controller stops
the server with that line, so a server never runs on half its listeners.

A listen may take a while (an onion endpoint waits for Tor).  If the service
is stopped meanwhile, the listen is left to finish and the port it brings is
closed at once: cancelling instead would drop that port, still listening,
whenever the endpoint's Deferred has no canceller of its own.
"""

from twisted.application import service
from twisted.internet import address as addresses
from twisted.internet import endpoints, error
from twisted.web import server

from electrumx.config.services import host_port
from electrumx.logs import Logger


class Listener(service.Service):
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
        self.endpoint = endpoint
        self.factory = factory
        self.label = label
        self.address = address
        self.on_failure = on_failure
        self.on_listening = on_listening
        self.on_stopping = on_stopping
        self.port = None
        self._listen_call = None
        """The Deferred of the listen this service still wants, once it was asked for."""

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
        super().privilegedStartService()
        self._listen()

    def startService(self):
        super().startService()
        if self._listen_call is None:       # no privileged start came first
            self.privilegedStartService()

    def _listen(self):
        listen_call = self._listen_call = self.endpoint.listen(self.factory)

        def listened(port):
            if self._listen_call is not listen_call:    # stopped meanwhile
                return port.stopListening()
            self.port = port
            self.log_listening(port)
            if self.on_listening is not None:
                self.on_listening(port)
            return None

        def failed(failure):
            if self._listen_call is listen_call:
                self.on_failure(f"cannot listen for {self.label} on {self.address}: "
                                f"{listen_failure_reason(failure.value)}")

        listen_call.addCallbacks(listened, failed)

    def log_listening(self, port):
        """One line saying where we listen (a subclass may say more)."""
        self.log.info("serving {label} on {address}", label=self.label,
                      address=describe_address(port.getHost()))

    def stopService(self):
        super().stopService()
        self._listen_call = None
        port, self.port = self.port, None
        if port is None:
            return None
        if self.on_stopping is not None:
            self.on_stopping(port)
        return port.stopListening()


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
