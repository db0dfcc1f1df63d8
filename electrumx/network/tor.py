"""Reaching peers through Tor's SOCKS proxy: onion names, detecting the proxy, endpoints.

Onion peers (and every peer, with FORCE_PROXY) are reached through a SOCKS5
proxy, normally a local `tor`: TOR_PROXY_HOST and TOR_PROXY_PORT, or, with
no port given, the first of 9050, 9150 and 1080 that answers a SOCKS5
greeting.  The connection itself is txtorcon's `TorSocksEndpoint`.
"""

import ipaddress
import re

from twisted.internet import defer, endpoints, protocol, ssl
from txtorcon.socks import TorSocksEndpoint

ONION_V3 = re.compile(r"^[a-z2-7]{56}\.onion$")
DEFAULT_PROXY_PORTS = (9050, 9150, 1080)
DETECT_TIMEOUT = 5.0
SOCKS5_NO_AUTH = b"\x05\x01\x00"


def is_onion(host: str) -> bool:
    """A version 3 onion name (older, shorter ones are no longer served by Tor)."""
    return bool(ONION_V3.match(host))


class TorProxy:
    """A SOCKS5 proxy known to answer: where it is, and endpoints through it."""

    def __init__(self, reactor, host: str, port: int):
        self.reactor = reactor
        self.host = host
        self.port = port

    def __repr__(self):
        return f"TorProxy({self.host}:{self.port})"

    def addresses(self) -> set:
        """The addresses clients coming through this proxy (or its tor) connect from."""
        if self.host == "localhost":
            return {"127.0.0.1", "::1"}
        try:
            return {str(ipaddress.ip_address(self.host))}
        except ValueError:
            return set()

    def endpoint(self, host: str, port: int, use_tls: bool, timeout: float):
        proxy = endpoints.HostnameEndpoint(self.reactor, self.host, self.port, timeout=timeout)
        return TorSocksEndpoint(proxy, host, port,
                                tls=ssl.CertificateOptions() if use_tls else False)


class _Greeting(protocol.Protocol):
    def __init__(self):
        self.answer = defer.Deferred()
        self.received = b""

    def connectionMade(self):
        self.transport.write(SOCKS5_NO_AUTH)

    def dataReceived(self, data):
        self.received += data
        if len(self.received) >= 2 and not self.answer.called:
            self.answer.callback(self.received[:2] == b"\x05\x00")
            self.transport.loseConnection()

    def connectionLost(self, reason=None):
        if not self.answer.called:
            self.answer.callback(False)


async def answers_socks5(reactor, host: str, port: int, timeout=DETECT_TIMEOUT) -> bool:
    """Whether host:port answers a SOCKS5 greeting without authentication."""
    greeting = _Greeting()
    endpoint = endpoints.HostnameEndpoint(reactor, host, port, timeout=timeout)
    try:
        await endpoints.connectProtocol(endpoint, greeting)
    except Exception:
        return False
    answer = greeting.answer
    answer.addTimeout(timeout, reactor)
    try:
        return await answer
    except defer.TimeoutError:
        greeting.transport.abortConnection()
        return False


async def detect_proxy(reactor, host: str, port=None, timeout=DETECT_TIMEOUT):
    """The TorProxy at host:port, or at the first default port answering; None if none."""
    for candidate in ([port] if port else DEFAULT_PROXY_PORTS):
        if await answers_socks5(reactor, host, candidate, timeout):
            return TorProxy(reactor, host, candidate)
    return None
