"""A peer record, and the parsing of what other servers claim about themselves.

Everything here is pure: hosts and `server.features` dicts come from
strangers, so each is checked for shape and size before it is believed, and
a refusal is a `PeerError` with a short reason for the log.
"""

import ipaddress
import re
from dataclasses import dataclass, field

from electrumx.protocol.version import UnsupportedVersion, parse_version, version_string

MAX_HOST_LEN = 253
MAX_HOSTS = 8
"""Most hosts a server may claim in its features (ElectrumX servers list one to three)."""
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL_SUFFIXES = (".local", ".localhost", ".internal", ".lan", ".home.arpa")
_ONION_V3 = re.compile(r"^[a-z2-7]{56}\.onion$")


class PeerError(Exception):
    """A peer lied, misbehaved or could not be checked; the message says how."""


class PeerUnreachable(PeerError):
    """A peer could not be connected to (it may be down, or not up yet)."""


def check_host(host, allow_loopback: bool = False) -> str:
    """The lowercased host if it is a public name or address another server could reach.

    Refused: non-text, over-long or malformed names, `localhost` and local
    suffixes, private, link-local, multicast and unspecified addresses, and
    loopback unless `allow_loopback` (a test setting).  Onion hosts must be
    version 3 names (whether we can reach them is the peer manager's concern).
    """
    if not isinstance(host, str) or not host or len(host) > MAX_HOST_LEN or not host.isascii():
        raise PeerError(f"bad host {str(host)[:60]!r}")
    host = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if address.is_loopback:
            if allow_loopback:
                return host
            raise PeerError(f"loopback host {host}")
        if (address.is_private or address.is_link_local or address.is_multicast
                or address.is_unspecified or address.is_reserved):
            raise PeerError(f"non-public address {host}")
        return host
    if host.endswith(".onion"):
        if _ONION_V3.match(host):
            return host
        raise PeerError(f"bad onion name {host[:70]!r}")
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        raise PeerError(f"unreachable host {host[:60]!r}")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) \
            or labels[-1].isdigit():
        raise PeerError(f"bad host name {host[:60]!r}")
    return host


def _port(value):
    """A port number, None when absent; anything else is a lie."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise PeerError(f"bad port {str(value)[:20]!r}")
    return value


def _version(value, what):
    try:
        return version_string(parse_version(value))
    except UnsupportedVersion:
        raise PeerError(f"bad {what} {str(value)[:30]!r}") from None


@dataclass
class Peer:
    """One server we know of: where it listens, what it said, and how checks went.

    A peer is identified by host and ports (`key`), so two servers on one
    machine are two peers.  `source` says how we heard of it: "seed",
    "add_peer", "irc" or "peer <host>".  Times are the clock's seconds.
    """

    host: str
    tcp_port: int = None
    ssl_port: int = None
    source: str = "seed"
    protocol_max: str = None
    server_version: str = None
    pruning: int = None
    ip_addr: str = None
    added: float = 0.0
    last_good: float = 0.0
    last_try: float = 0.0
    next_check: float = 0.0
    bad_reason: str = None
    failures: int = 0
    is_seed: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (self.host, self.tcp_port, self.ssl_port)

    @property
    def is_onion(self) -> bool:
        return self.host.endswith(".onion")

    @property
    def ports(self) -> list:
        """(protocol, port) to try, TLS first."""
        return [(name, port) for name, port in (("ssl", self.ssl_port), ("tcp", self.tcp_port))
                if port]

    def is_bad(self, now: float) -> bool:
        return self.bad_reason is not None and now < self.next_check

    def subscribe_entry(self) -> list:
        """The peer in server.peers.subscribe shape: [ip, host, ["v1.4", "s50002", ...]]."""
        tags = []
        if self.protocol_max:
            tags.append("v" + self.protocol_max)
        if self.ssl_port:
            tags.append(f"s{self.ssl_port}")
        if self.tcp_port:
            tags.append(f"t{self.tcp_port}")
        if self.pruning:
            tags.append(f"p{self.pruning}")
        return [self.ip_addr or self.host, self.host, tags]

    def real_name(self) -> str:
        """"host v1.4 s50002 t50001", as seeds, IRC real names and logs spell a peer."""
        return " ".join([self.host] + self.subscribe_entry()[2])


def peers_from_features(features, source: str, allow_loopback: bool = False) -> list:
    """The peers a `server.features` dict describes, one per sane host with a port.

    Raises PeerError when the dict itself is malformed (no `hosts` dict, too
    many hosts); hosts that are merely unreachable are left out.
    """
    if not isinstance(features, dict):
        raise PeerError("features are not a dict")
    hosts = features.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        raise PeerError("features have no hosts")
    if len(hosts) > MAX_HOSTS:
        raise PeerError(f"features claim {len(hosts)} hosts")
    protocol_max = features.get("protocol_max")
    protocol_max = None if protocol_max is None else _version(protocol_max, "protocol_max")
    server_version = features.get("server_version")
    server_version = str(server_version)[:60] if server_version is not None else None
    pruning = features.get("pruning")
    if pruning is not None and (isinstance(pruning, bool) or not isinstance(pruning, int)):
        raise PeerError("bad pruning")
    peers = []
    for host, ports in hosts.items():
        if not isinstance(ports, dict):
            raise PeerError(f"ports of {str(host)[:60]!r} are not a dict")
        tcp_port, ssl_port = _port(ports.get("tcp_port")), _port(ports.get("ssl_port"))
        try:
            host = check_host(host, allow_loopback)
        except PeerError:
            continue
        if tcp_port or ssl_port:
            peers.append(Peer(host, tcp_port, ssl_port, source=source,
                              protocol_max=protocol_max, server_version=server_version,
                              pruning=pruning))
    return peers


def peer_from_entry(entry, source: str, allow_loopback: bool = False, default_ports=None):
    """A peer from a server.peers.subscribe entry [ip, host, [tags]], or a seed string.

    A seed string is "host s t50001 v1.4": a bare "s" or "t" means the coin's
    default port, given in `default_ports` as (tcp, ssl).
    """
    if isinstance(entry, str):
        host, *tags = entry.split()
    elif isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], list):
        host, tags = entry[1], entry[2]
    else:
        raise PeerError("bad peer entry")
    if len(tags) > 10 or not all(isinstance(tag, str) and 0 < len(tag) <= 12 for tag in tags):
        raise PeerError("bad peer tags")
    host = check_host(host, allow_loopback)
    tcp_default, ssl_default = default_ports or (None, None)
    peer = Peer(host, source=source)
    for tag in tags:
        letter, number = tag[0], tag[1:]
        if letter in "ts":
            if number and not number.isdigit():
                raise PeerError(f"bad tag {tag!r}")
            port = _port(int(number)) if number else (tcp_default if letter == "t"
                                                       else ssl_default)
            if letter == "t":
                peer.tcp_port = port
            else:
                peer.ssl_port = port
        elif letter == "v":
            peer.protocol_max = _version(number, "version tag")
    if not (peer.tcp_port or peer.ssl_port):
        raise PeerError(f"no ports for {host}")
    return peer
