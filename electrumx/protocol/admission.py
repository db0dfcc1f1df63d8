"""Admission at accept: at most MAX_CLIENTS_PER_IP connections from one address.

Every client connection is counted, whatever carries it (TCP, TLS,
WebSocket) and whichever listener took it, from the moment it is accepted
until it closes: a TLS handshake or a WebSocket upgrade that never finishes
holds a socket as surely as a session does, so it counts too.  One more
connection from an address at the limit is closed at accept, before a byte
of it is read.

Addresses in SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS are not limited;
loopback is there by default because onion clients arrive from the local
tor, all from 127.0.0.1.
"""

import ipaddress

from twisted.internet import protocol
from twisted.internet.interfaces import IHandshakeListener
from twisted.protocols import policies
from zope.interface import implementer

from electrumx.logs import Logger
from electrumx.protocol.bans import client_address, in_networks

IPV6_PREFIX_LENGTH = 64
"""IPv6 clients are counted per /64, not per address.  A /64 is the smallest
network given to one subscriber or host, and a host picks addresses in it
at will (privacy addresses): counted per address, one IPv6 host could open
any number of connections.  A /64 holds one home or one server, as one
IPv4 address behind NAT does."""

REFUSAL_LOG_SECS = 60.0
"""An address refused again within this many seconds is not logged again, so
a client retrying in a loop cannot fill the log."""


def counted_against(address):
    """What connections from `address` are counted against: itself (IPv4), its /64 (IPv6)."""
    if address.version == 4:
        return address
    return ipaddress.ip_network(f"{address}/{IPV6_PREFIX_LENGTH}", strict=False)


class PerAddressLimit:
    """Open connections per client address, and whether one more may come in.

    `limit` 0 means no limit.  `exempt` is a sequence of IP networks.
    """

    log = Logger()

    def __init__(self, clock, limit: int, exempt=(), anon_logs=False):
        self.clock = clock
        self.limit = limit
        self.exempt = tuple(exempt)
        self.anon_logs = anon_logs
        self.counts: dict[object, int] = {}
        """Open connections by counted address; an address with none is absent."""
        self.refused = 0
        """Connections refused since start (a metric)."""
        self._logged_at: dict[object, float] = {}

    def counted_as(self, host: str):
        """What a connection from `host` counts against, or None if it is not limited."""
        if not self.limit:
            return None
        address = client_address(host)
        if address is None or in_networks(address, self.exempt):
            return None
        return counted_against(address)

    def admits(self, counted) -> bool:
        """Whether one more connection counted against `counted` may be accepted."""
        return self.counts.get(counted, 0) < self.limit

    def add(self, counted):
        self.counts[counted] = self.counts.get(counted, 0) + 1

    def remove(self, counted):
        left = self.counts[counted] - 1
        if left:
            self.counts[counted] = left
        else:
            del self.counts[counted]

    def refuse(self, counted):
        """Count a refused connection; log it unless this address was logged lately."""
        self.refused += 1
        now = self.clock.seconds()
        last = self._logged_at.get(counted)
        if last is not None and now - last < REFUSAL_LOG_SECS:
            return
        self._logged_at = {key: at for key, at in self._logged_at.items()
                           if now - at < REFUSAL_LOG_SECS}
        self._logged_at[counted] = now
        self.log.info("refusing connections from {address}: {count} open, "
                      "MAX_CLIENTS_PER_IP is {limit}",
                      address="xx.xx.xx.xx" if self.anon_logs else counted,
                      count=self.counts.get(counted, 0), limit=self.limit)


@implementer(IHandshakeListener)
class HandshakeRelay(policies.ProtocolWrapper):
    """A protocol wrapper that passes on the end of a TLS handshake.

    The TLS layer tells only the protocol it wraps directly; and a plain
    ProtocolWrapper would look `handshakeCompleted` up on its transport,
    which under a stack of wrappers calls the outer wrapper again, forever.
    """

    def handshakeCompleted(self):
        if IHandshakeListener.providedBy(self.wrappedProtocol):
            self.wrappedProtocol.handshakeCompleted()


class AdmittedConnection(HandshakeRelay):
    """One accepted connection, counted from `makeConnection` to `connectionLost`."""

    counts_against = None
    """Set by the factory: what this connection counts against (None: not limited)."""
    _counted = None

    def makeConnection(self, transport):
        if self.counts_against is not None:
            self.factory.limit.add(self.counts_against)
            self._counted = self.counts_against
        super().makeConnection(transport)

    def connectionLost(self, reason):
        if self._counted is not None:
            self.factory.limit.remove(self._counted)
            self._counted = None
        super().connectionLost(reason)


class RefusedConnection(protocol.Protocol):
    """A connection turned away at accept: closed as soon as it is made.

    Refusing by returning None from `buildProtocol` works only for a plain TCP
    listener: on ssl and wss the TLS layer's factory wraps whatever it is given,
    None included, and the connection is then left open, broken, for good.
    """

    def connectionMade(self):
        self.transport.abortConnection()


class AdmissionFactory(policies.WrappingFactory):
    """Wraps one listener's factory; every listener shares one `PerAddressLimit`.

    It also turns the wrapped factory's refusals (bans, MAX_SESSIONS) into a
    `RefusedConnection`, which every transport can close.
    """

    protocol = AdmittedConnection
    noisy = False

    def __init__(self, wrapped_factory, limit: PerAddressLimit):
        super().__init__(wrapped_factory)
        self.limit = limit

    def buildProtocol(self, addr):
        counted = self.limit.counted_as(getattr(addr, "host", ""))
        if counted is not None and not self.limit.admits(counted):
            self.limit.refuse(counted)
            return RefusedConnection()
        wrapped = self.wrappedFactory.buildProtocol(addr)
        if wrapped is None:
            return RefusedConnection()
        connection = self.protocol(self, wrapped)
        connection.counts_against = counted
        return connection
