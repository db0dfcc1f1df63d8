"""Serving our listeners as a Tor onion service, through tor's control port (txtorcon).

With TOR_CONTROL set, the server asks tor (`ADD_ONION`) to forward an onion
address's ports to our listeners: each served tcp, ssl, ws and wss port is
published on the same port number.  The onion's key is kept in
TOR_ONION_KEY_FILE, so the address survives restarts.  Once tor answers,
the onion address joins REPORT_SERVICES: `server.features` reports it and
the peer manager announces it.  The service is removed (`DEL_ONION`) when
the server stops; tor also drops it if our control connection closes.

TOR_CONTROL is a Twisted client endpoint description ("tcp:127.0.0.1:9051",
"unix:/run/tor/control") or "launch" to start a private tor with txtorcon.
"""

import os

from twisted.application import service
from twisted.internet import defer, endpoints

from electrumx.config.services import Service
from electrumx.logs import Logger
from electrumx.private_files import write_private_file

ONION_PROTOCOLS = ("tcp", "ssl", "ws", "wss")


class OnionError(Exception):
    """Tor refused or answered the onion service request in a way we cannot use."""


def add_onion_command(ports, key=None) -> str:
    """The ADD_ONION command publishing (public port, local host, local port) triples."""
    key_spec = key or "NEW:ED25519-V3"
    mappings = " ".join(f"Port={public},{host}:{local}" for public, host, local in ports)
    flags = "" if key is None else " Flags=DiscardPK"
    return f"ADD_ONION {key_spec}{flags} {mappings}"


def parse_add_onion(reply: str) -> tuple:
    """(service id, private key or None) from tor's ADD_ONION reply lines."""
    values = {}
    for line in reply.splitlines():
        name, equals, value = line.strip().partition("=")
        if equals:
            values[name] = value
    service_id = values.get("ServiceID", "")
    if len(service_id) != 56 or not service_id.isalnum():
        raise OnionError(f"tor's ADD_ONION reply has no usable ServiceID: {reply[:120]!r}")
    return service_id.lower(), values.get("PrivateKey")


def published_ports(services) -> list:
    """(public port, local host, local port) for each served service tor should reach."""
    ports = []
    for svc in services:
        if svc.protocol in ONION_PROTOCOLS:
            host = svc.host if svc.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
            ports.append((svc.port, host, svc.port))
    return ports


def read_key(path):
    try:
        with open(path) as f:
            key = f.read().strip()
    except FileNotFoundError:
        return None
    if not key.startswith("ED25519-V3:"):
        raise OnionError(f"{path} does not hold an ED25519-V3 onion key")
    return key


def write_key(path, key):
    """Write the key readable by us alone (it is the onion address's identity)."""
    write_private_file(path, (key + "\n").encode())


class OnionService(service.Service):
    """Publishes our listeners as an onion service while running (TOR_CONTROL)."""

    log = Logger()
    name = "onion"

    def __init__(self, settings, reactor, connect=None):
        self.settings = settings
        self.reactor = reactor
        self.connect = connect or self._connect_tor
        self.key_file = settings.tor_onion_key_file or os.path.join(
            settings.db_directory, "tor-onion-key")
        self.protocol = None
        self.service_id = None
        self._outcome = None
        self._waiting = []

    @property
    def onion_host(self):
        return None if self.service_id is None else self.service_id + ".onion"

    def when_ready(self):
        """A Deferred of the onion host name once published, or of the reason it was not."""
        if self._outcome is not None:
            return defer.succeed(None).addCallback(lambda _: self._outcome)
        d = defer.Deferred()
        self._waiting.append(d)
        return d

    def _settle(self, outcome):
        self._outcome = outcome
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(outcome)

    def startService(self):
        super().startService()
        d = defer.ensureDeferred(self.publish())
        d.addCallbacks(self._published, self._failed)

    async def _connect_tor(self):
        """A bootstrapped txtorcon TorControlProtocol, as TOR_CONTROL says."""
        import txtorcon
        control = self.settings.tor_control
        password = self.settings.tor_control_password

        def password_function():
            return password

        if control == "launch":
            tor = await txtorcon.launch(self.reactor)
            return tor.protocol
        endpoint = endpoints.clientFromString(self.reactor, control)
        return await txtorcon.build_tor_connection(endpoint, build_state=False,
                                                   password_function=password_function)

    async def publish(self) -> str:
        ports = published_ports(self.settings.services)
        if not ports:
            raise OnionError("no tcp, ssl, ws or wss service to publish")
        key = read_key(self.key_file)
        self.protocol = await self.connect()
        reply = await self.protocol.queue_command(add_onion_command(ports, key))
        self.service_id, new_key = parse_add_onion(reply)
        if key is None and new_key:
            write_key(self.key_file, new_key)
        return self.onion_host

    def _published(self, host):
        reported = self.settings.report_services
        for svc in self.settings.services:
            if svc.protocol in ONION_PROTOCOLS:
                onion = Service(svc.protocol, host, svc.port)
                if onion not in reported:
                    reported.append(onion)
        self.log.info("serving as the onion service {host}", host=host)
        self._settle(host)

    def _failed(self, failure):
        self.log.error("no onion service through TOR_CONTROL {control}: {error}",
                       control=self.settings.tor_control, error=failure.value)
        self._settle(failure)

    def stopService(self):
        super().stopService()
        if self.protocol is None:
            return defer.succeed(None)
        d = defer.succeed(None)
        if self.service_id is not None:
            d = self.protocol.queue_command(f"DEL_ONION {self.service_id}")
            d.addErrback(lambda f: self.log.warn("DEL_ONION: {error}", error=f.value))
        d.addBoth(lambda _: self.protocol.transport.loseConnection())
        return d
