"""SERVICES and REPORT_SERVICES: `proto://host:port` entries and their Twisted endpoints.

A served `Service` becomes a listener on the TCP endpoint its
`endpoint_description` gives (`serverFromString`); a TLS service is that
same TCP endpoint wrapped in the server's reloadable TLS context
(`electrumx.listener.Listener.serving`), so plain TCP and TLS are one code
path for the session manager.
"""

import ipaddress
import re
from dataclasses import dataclass

from electrumx.config.errors import ConfigError

PROTOCOLS = ("tcp", "ssl", "ws", "wss", "rpc")
TLS_PROTOCOLS = frozenset({"ssl", "wss"})
RPC_DEFAULT_HOST = "localhost"
RPC_DEFAULT_PORT = 8000


@dataclass(frozen=True)
class Service:
    """One served or advertised service; an empty host means every interface."""

    protocol: str
    host: str
    port: int

    def __str__(self):
        return f"{self.protocol}://{host_port(self.host, self.port)}"

    @property
    def is_tls(self) -> bool:
        return self.protocol in TLS_PROTOCOLS

    def endpoint_description(self) -> str:
        """The `serverFromString` description of the TCP listener under this service."""
        parts = ["tcp", f"port={self.port}"]
        if self.host:
            parts.append("interface=" + escape_endpoint_value(self.host))
        return ":".join(parts)


def host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def escape_endpoint_value(value: str) -> str:
    """Escape a value for an endpoint description, where ':' '=' and '\\' are special."""
    return re.sub(r"([\\:=])", r"\\\1", value)


def parse_service(text: str, setting: str) -> Service:
    """Parse one `proto://host:port` entry; an rpc entry may leave out host and port."""
    entry = text.strip()
    protocol, separator, address = entry.partition("://")
    protocol = protocol.lower()
    if not separator or protocol not in PROTOCOLS:
        raise ConfigError(setting, f"{entry!r} is not protocol://host:port with protocol one "
                                   f"of {', '.join(PROTOCOLS)}")
    host, port_text = _split_address(address, setting, entry)
    if protocol == "rpc":
        host = host or RPC_DEFAULT_HOST
        port_text = port_text or str(RPC_DEFAULT_PORT)
    if not port_text:
        raise ConfigError(setting, f"{entry!r} has no port")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(setting, f"{entry!r} has a bad port {port_text!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(setting, f"{entry!r} has a port out of range (1 to 65535)")
    return Service(protocol, host, port)


def _split_address(address, setting, entry):
    """`host:port`, `[ipv6]:port`, `host` or `` into (host, port text)."""
    if address.startswith("["):
        host, bracket, after = address[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise ConfigError(setting, f"{entry!r} has a malformed [IPv6] address")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(setting, f"{entry!r} has a bad IPv6 address") from None
        return host, after[1:]
    if address.count(":") > 1:
        raise ConfigError(setting, f"{entry!r}: put an IPv6 address in brackets, "
                                   "as [::1]:50001")
    host, _, port_text = address.partition(":")
    return host, port_text


def parse_services(text: str, setting: str) -> list:
    """A comma-separated list of services, none given twice."""
    services = []
    for part in (text or "").split(","):
        if part.strip():
            service = parse_service(part, setting)
            if service in services:
                raise ConfigError(setting, f"{service} is given twice")
            services.append(service)
    return services


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_private(host: str) -> bool:
    """True for addresses other servers cannot reach: loopback, private, link-local."""
    if host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.endswith(".local")
    return address.is_private or address.is_loopback or address.is_link_local


def check_served(services, setting: str, rpc_allow_public: bool):
    """Services to listen on: real ports used once, and the admin rpc on loopback."""
    by_port: dict[int, Service] = {}
    for service in services:
        if service.host.endswith(".onion"):
            raise ConfigError(setting, f"{service}: cannot listen on an onion address; serve "
                                       "a local port that Tor forwards to")
        if service.port in by_port:
            raise ConfigError(setting, f"{service} and {by_port[service.port]} use the same "
                                       "port")
        by_port[service.port] = service
        if service.protocol == "rpc" and not is_loopback(service.host) and not rpc_allow_public:
            raise ConfigError(setting, f"{service} is not a loopback address: the admin rpc "
                                       "must not be public (set RPC_ALLOW_PUBLIC to force it)")


def check_reported(services, setting: str, announcing: bool, allow_loopback: bool = False):
    """Advertised services: no rpc, and (when announcing) only addresses others can reach.

    `allow_loopback` (PEER_ALLOW_LOOPBACK, for tests on one machine) lets
    loopback addresses through; other private addresses are still refused.
    """
    for service in services:
        if service.protocol == "rpc":
            raise ConfigError(setting, f"{service}: the admin rpc is never advertised")
        if not service.host:
            raise ConfigError(setting, f"{service} needs a host name to advertise")
        if allow_loopback and is_loopback(service.host):
            continue
        if announcing and is_private(service.host):
            raise ConfigError(setting, f"{service} is a local or private address, which peers "
                                       "cannot reach (or set PEER_ANNOUNCE=no)")
