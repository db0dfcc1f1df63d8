"""A SOCKS5 proxy stand-in on 127.0.0.1, for Tor's SOCKS port: onion names map to loopback.

It speaks the part of SOCKS5 that Tor clients use (no authentication,
CONNECT by name or IPv4 address), records each CONNECT, and relays bytes.
"""

import ipaddress
import struct

from twisted.internet import endpoints, protocol, reactor

from tests.fixtures.host import listen_on_loopback


class _Relay(protocol.Protocol):
    def __init__(self, client):
        self.client = client

    def connectionMade(self):
        self.client.outbound = self
        self.client.transport.write(b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")
        if self.client.pending:
            self.transport.write(self.client.pending)
            self.client.pending = b""

    def dataReceived(self, data):
        self.client.transport.write(data)

    def connectionLost(self, reason=None):
        self.client.transport.loseConnection()


class Socks5Session(protocol.Protocol):
    def connectionMade(self):
        self.buffer = b""
        self.state = "greeting"
        self.outbound = None
        self.pending = b""

    def dataReceived(self, data):
        if self.state == "relay":
            if self.outbound is None:
                self.pending += data
            else:
                self.outbound.transport.write(data)
            return
        self.buffer += data
        if self.state == "greeting" and len(self.buffer) >= 2 \
                and len(self.buffer) >= 2 + self.buffer[1]:
            self.buffer = self.buffer[2 + self.buffer[1]:]
            self.transport.write(b"\x05\x00")
            self.state = "request"
        if self.state == "request" and len(self.buffer) >= 5:
            kind = self.buffer[3]
            if kind == 3:
                end = 5 + self.buffer[4]
                host = self.buffer[5:end].decode()
            elif kind == 1:
                end = 8
                host = str(ipaddress.IPv4Address(self.buffer[4:8]))
            else:
                self.transport.write(b"\x05\x08\x00\x01" + bytes(6))
                self.transport.loseConnection()
                return
            if len(self.buffer) < end + 2:
                return
            port = struct.unpack(">H", self.buffer[end:end + 2])[0]
            self.pending, self.buffer = self.buffer[end + 2:], b""
            self.state = "relay"
            self.connect(host, port)

    def connect(self, host, port):
        proxy = self.factory.proxy
        proxy.connects.append((host, port))
        target = proxy.routes.get(host, host if not host.endswith(".onion") else None)
        if target is None:
            self.transport.write(b"\x05\x04\x00\x01" + bytes(6))       # host unreachable
            self.transport.loseConnection()
            return
        d = endpoints.connectProtocol(endpoints.TCP4ClientEndpoint(reactor, target, port),
                                      _Relay(self))
        d.addErrback(lambda _: (self.transport.write(b"\x05\x05\x00\x01" + bytes(6)),
                                self.transport.loseConnection()))

    def connectionLost(self, reason=None):
        if self.outbound is not None:
            self.outbound.transport.loseConnection()


class Socks5Proxy:
    def __init__(self, routes):
        self.routes = routes
        self.connects = []
        self.port = None
        self.listening = None


async def start_socks5(routes=None) -> Socks5Proxy:
    proxy = Socks5Proxy(routes or {})
    proxy.listening = await listen_on_loopback(Socks5Session, proxy=proxy)
    proxy.port = proxy.listening.getHost().port
    return proxy
