"""SERVICES and REPORT_SERVICES: `proto://host:port` entries and their Twisted endpoints."""

import ipaddress

from electrumx.config.errors import ConfigError

PROTOCOLS = ("tcp", "ssl", "ws", "wss", "rpc")
TLS_PROTOCOLS = ("ssl", "wss")
DEFAULT_RPC = ("localhost", 8000)


class Service:
    """One listening (or advertised) service: protocol, host and port."""

    __slots__ = ("protocol", "host", "port")

    def __init__(self, protocol: str, host: str, port: int):
        self.protocol = protocol
        self.host = host
        self.port = port

    def __str__(self):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}:{self.port}"

    __repr__ = __str__

    def __eq__(self, other):
        return isinstance(other, Service) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    @property
    def is_tls(self):
        return self.protocol in TLS_PROTOCOLS

    def endpoint_description(self, certfile=None, keyfile=None) -> str:
        """The `serverFromString` description of this service's listener."""
        parts = ["ssl" if self.is_tls else "tcp", str(self.port)]
        if self.host:
            parts.append("interface=" + _escape(self.host))
        if self.is_tls:
            parts.append("privateKey=" + _escape(keyfile))
            parts.append("certKey=" + _escape(certfile))
        return ":".join(parts)


def _escape(value: str) -> str:
    """Escape a value for a Twisted endpoint description (':' and '=' are special)."""
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def parse_service(text: str, setting: str) -> Service:
    """Parse one `proto://host:port` entry; an rpc entry may leave out host and port."""
    text = text.strip()
    proto, sep, rest = text.partition("://")
    proto = proto.lower()
    if not sep or proto not in PROTOCOLS:
        raise ConfigError(setting, f"{text!r} is not protocol://host:port with protocol one "
                                   f"of {', '.join(PROTOCOLS)}")
    if proto == "rpc" and not rest:
        return Service(proto, *DEFAULT_RPC)
    if rest.startswith("["):
        host, bracket, after = rest[1:].partition("]")
        if not bracket:
            raise ConfigError(setting, f"{text!r} has an unclosed IPv6 bracket")
        port_text = after[1:] if after.startswith(":") else after
        _check_ipv6(host, setting, text)
    else:
        host, _, port_text = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if host.endswith(".onion"):
        raise ConfigError(setting, f"{text!r}: serve onion services with an onion: endpoint")
    if not port_text:
        if proto == "rpc":
            return Service(proto, host or DEFAULT_RPC[0], DEFAULT_RPC[1])
        raise ConfigError(setting, f"{text!r} has no port")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(setting, f"{text!r} has a bad port {port_text!r}") from None
    if not 0 < port < 65536:
        raise ConfigError(setting, f"{text!r} has a port out of range")
    return Service(proto, host, port)


def _check_ipv6(host, setting, text):
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ConfigError(setting, f"{text!r} has a bad IPv6 address") from None


def parse_services(text: str, setting: str):
    """A comma-separated list of services, with no port used twice."""
    services = [parse_service(part, setting) for part in (text or "").split(",")
                if part.strip()]
    seen = {}
    for service in services:
        key = (service.host, service.port)
        if key in seen:
            raise ConfigError(setting, f"{service} and {seen[key]} use the same address")
        seen[key] = service
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


def check_rpc_is_local(services, allow_public: bool, setting: str):
    """The admin RPC listens on loopback only, unless the operator forces otherwise."""
    for service in services:
        if service.protocol == "rpc" and not is_loopback(service.host) and not allow_public:
            raise ConfigError(setting, f"{service} is not a loopback address: the admin RPC "
                                       "must not be public (set RPC_ALLOW_PUBLIC to force it)")


def check_report_services(services, setting: str, announcing: bool):
    """Advertised services: no rpc, and no address other servers cannot reach."""
    for service in services:
        if service.protocol == "rpc":
            raise ConfigError(setting, f"{service}: the admin RPC is never advertised")
        if not service.host:
            raise ConfigError(setting, f"{service} needs a host name to advertise")
        if announcing and is_private(service.host):
            raise ConfigError(setting, f"{service} is a private or local address and cannot "
                                       "be announced to peers")
