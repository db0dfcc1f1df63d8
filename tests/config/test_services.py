"""SERVICES and REPORT_SERVICES: parsing, refusals, and endpoints that really listen."""

import socket

import pytest
import pytest_twisted
from twisted.internet import defer, endpoints, protocol, ssl

from electrumx.config.services import Service, escape_endpoint_value, parse_service
from electrumx.config.tls import PEM_CERTIFICATE
from electrumx.protocol.tls import ReloadableTLS

from tests.config import certs
from tests.config.helpers import load, refused


@pytest.mark.parametrize("text, expected", [
    ("tcp://:50001", Service("tcp", "", 50001)),
    ("TCP://0.0.0.0:50001", Service("tcp", "0.0.0.0", 50001)),
    ("ssl://electrum.example.com:50002", Service("ssl", "electrum.example.com", 50002)),
    ("ws://[::1]:50003", Service("ws", "::1", 50003)),
    ("wss://[::]:50004", Service("wss", "::", 50004)),
    ("rpc://", Service("rpc", "localhost", 8000)),
    ("rpc://:8001", Service("rpc", "localhost", 8001)),
    ("rpc://127.0.0.2", Service("rpc", "127.0.0.2", 8000)),
    (" rpc://[::1]:9000 ", Service("rpc", "::1", 9000)),
])
def test_service_entries(text, expected):
    assert parse_service(text, "SERVICES") == expected


def test_service_text_round_trips():
    for text in ("tcp://:50001", "ws://[::1]:50003", "rpc://localhost:8000"):
        assert str(parse_service(text, "SERVICES")) == text


@pytest.mark.parametrize("services, expected", [
    ("tcp://:70000", "SERVICES: 'tcp://:70000' has a port out of range (1 to 65535)"),
    ("tcp://:0", "SERVICES: 'tcp://:0' has a port out of range"),
    ("tcp://:abc", "SERVICES: 'tcp://:abc' has a bad port 'abc'"),
    ("tcp://host", "SERVICES: 'tcp://host' has no port"),
    ("tcp://host:", "SERVICES: 'tcp://host:' has no port"),
    ("gopher://:70", "SERVICES: 'gopher://:70' is not protocol://host:port with protocol one "
                     "of tcp, ssl, ws, wss, rpc"),
    ("localhost:50001", "SERVICES: 'localhost:50001' is not protocol://host:port"),
    ("tcp://::1:50001", "SERVICES: 'tcp://::1:50001': put an IPv6 address in brackets"),
    ("tcp://[::1:50001", "SERVICES: 'tcp://[::1:50001' has a malformed [IPv6] address"),
    ("tcp://[::1]50001", "SERVICES: 'tcp://[::1]50001' has a malformed [IPv6] address"),
    ("tcp://[nothex]:1", "SERVICES: 'tcp://[nothex]:1' has a bad IPv6 address"),
    ("tcp://:50001,ws://127.0.0.1:50001", "SERVICES: ws://127.0.0.1:50001 and tcp://:50001 "
                                          "use the same port"),
    ("tcp://:50001,tcp://:50001", "SERVICES: tcp://:50001 is given twice"),
    ("tcp://abcdef.onion:50001", "SERVICES: tcp://abcdef.onion:50001: cannot listen on an "
                                 "onion address"),
    ("rpc://0.0.0.0:8000", "SERVICES: rpc://0.0.0.0:8000 is not a loopback address: the admin "
                           "rpc must not be public (set RPC_ALLOW_PUBLIC to force it)"),
    ("rpc://example.com", "SERVICES: rpc://example.com:8000 is not a loopback address"),
    ("ssl://:50002", "SSL_CERTFILE: is required to serve ssl or wss"),
])
def test_bad_services_are_refused(services, expected):
    assert refused({"SERVICES": services}).startswith(expected)


def test_a_public_rpc_can_be_forced():
    s = load({"SERVICES": "rpc://0.0.0.0:8000", "RPC_ALLOW_PUBLIC": "yes"})
    assert s.services == [Service("rpc", "0.0.0.0", 8000)]


def test_many_services():
    s = load({"SERVICES": "tcp://:50001, ws://127.0.0.1:50003,,rpc://"})
    assert [str(svc) for svc in s.services] == ["tcp://:50001", "ws://127.0.0.1:50003",
                                                "rpc://localhost:8000"]


def test_report_services():
    s = load({"REPORT_SERVICES": "tcp://electrum.example.com:50001,ssl://abcdef.onion:50002,"
                                 "ssl://electrum.example.com:50002,tcp://abcdef.onion:50001"})
    assert [svc.host for svc in s.report_services] == ["electrum.example.com", "abcdef.onion",
                                                        "electrum.example.com", "abcdef.onion"]
    private = load({"REPORT_SERVICES": "tcp://192.168.1.2:50001", "PEER_ANNOUNCE": "no"})
    assert private.report_services == [Service("tcp", "192.168.1.2", 50001)]


@pytest.mark.parametrize("reported, expected", [
    ("rpc://127.0.0.1:8000", "REPORT_SERVICES: rpc://127.0.0.1:8000: the admin rpc is never "
                             "advertised"),
    ("tcp://:50001", "REPORT_SERVICES: tcp://:50001 needs a host name to advertise"),
    ("tcp://192.168.1.2:50001", "REPORT_SERVICES: tcp://192.168.1.2:50001 is a local or "
                                "private address, which peers cannot reach"),
    ("tcp://localhost:50001", "REPORT_SERVICES: tcp://localhost:50001 is a local"),
    ("ssl://[fe80::1]:50002", "REPORT_SERVICES: ssl://[fe80::1]:50002 is a local"),
    ("tcp://10.1.2.3:1,tcp://10.1.2.3:1", "REPORT_SERVICES: tcp://10.1.2.3:1 is given twice"),
])
def test_bad_report_services_are_refused(reported, expected):
    assert refused({"REPORT_SERVICES": reported}).startswith(expected)


def test_endpoint_descriptions(tmp_path):
    """Every service listens on TCP; TLS ones wrap it in the server's TLS context."""
    cert, key = certs.self_signed(tmp_path)
    s = load({"SERVICES": "tcp://:50001,ssl://127.0.0.1:50002,ws://[::1]:50003,"
                          "wss://localhost:50004,rpc://",
              "SSL_CERTFILE": cert, "SSL_KEYFILE": key})
    tcp, tls, ws, wss, rpc = (svc.endpoint_description() for svc in s.services)
    assert tcp == "tcp:port=50001"
    assert tls == "tcp:port=50002:interface=127.0.0.1"
    assert ws == "tcp:port=50003:interface=\\:\\:1"
    assert wss == "tcp:port=50004:interface=localhost"
    assert rpc == "tcp:port=8000:interface=localhost"


def test_endpoint_values_are_escaped():
    assert escape_endpoint_value("C:\\dir=x\\key.pem") == "C\\:\\\\dir\\=x\\\\key.pem"


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Client(protocol.Protocol):
    """Sends a line once connected; fires `done` with the echo, or with the failure."""

    def __init__(self):
        self.done = defer.Deferred()
        self.lost = defer.Deferred()
        self.received = b""

    def connectionMade(self):
        self.transport.write(b"ping")

    def dataReceived(self, data):
        self.received += data
        if self.received == b"ping" and not self.done.called:
            self.done.callback(self.received)
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.errback(reason)
        self.lost.callback(None)


async def exchange(reactor, server_endpoint, client_endpoint_for):
    """Listen on `server_endpoint` (port 0), connect with a client, return (echo or failure)."""
    if isinstance(server_endpoint, str):
        server_endpoint = endpoints.serverFromString(reactor, server_endpoint)
    port = await server_endpoint.listen(protocol.Factory.forProtocol(Echo))
    try:
        client = Client()
        await endpoints.connectProtocol(client_endpoint_for(port.getHost()), client)
        try:
            return await client.done
        except Exception as failure:
            return failure
        finally:
            await client.lost
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_tcp_endpoint_listens():
    from twisted.internet import reactor
    description = Service("tcp", "127.0.0.1", 0).endpoint_description()
    echo = await exchange(reactor, description,
                          lambda address: endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1",
                                                                       address.port))
    assert echo == b"ping"


def _has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
@pytest_twisted.ensureDeferred
async def test_an_ipv6_endpoint_listens():
    from twisted.internet import reactor
    description = parse_service("ws://[::1]:1", "SERVICES").endpoint_description()
    description = description.replace("port=1", "port=0")
    echo = await exchange(reactor, description,
                          lambda address: endpoints.TCP6ClientEndpoint(reactor, "::1",
                                                                       address.port))
    assert echo == b"ping"


@pytest_twisted.ensureDeferred
async def test_tls_serves_the_whole_chain_from_odd_paths(tmp_path):
    """A fullchain certificate file in a folder whose name needs escaping verifies."""
    from twisted.internet import reactor
    cert, key, root_pem = certs.chained(tmp_path / "tls:dir=1")
    load({"SERVICES": "ssl://127.0.0.1:50002", "SSL_CERTFILE": cert, "SSL_KEYFILE": key})
    trust = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(root_pem))

    def client_endpoint(address):
        return endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", address.port, trust)

    def tls_endpoint(certfile):
        return endpoints.SSL4ServerEndpoint(reactor, 0, ReloadableTLS(certfile, key, reactor),
                                            interface="127.0.0.1")

    assert await exchange(reactor, tls_endpoint(cert), client_endpoint) == b"ping"
    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes(PEM_CERTIFICATE.search(open(cert, "rb").read()).group(0))
    failure = await exchange(reactor, tls_endpoint(str(leaf_only)), client_endpoint)
    assert isinstance(failure, Exception), "the leaf alone should not verify"


@pytest.mark.parametrize("problem", ["not a certificate", "key of another", "encrypted key",
                                     "key is a certificate"])
def test_bad_certificates_and_keys(tmp_path, problem):
    cert, key = certs.self_signed(tmp_path / "a")
    other_cert, other_key = certs.self_signed(tmp_path / "b")
    _, encrypted_key = certs.self_signed(tmp_path / "c", passphrase=b"hunter2")
    cert, key, expected = {
        "not a certificate": (key, key, f"SSL_CERTFILE: {key!r} is not a PEM certificate"),
        "key of another": (cert, other_key, f"SSL_KEYFILE: {other_key!r} is not the "
                                            f"private key of {cert!r}"),
        "encrypted key": (cert, encrypted_key, f"SSL_KEYFILE: {encrypted_key!r} is encrypted; "
                                               "give the key without a passphrase"),
        "key is a certificate": (cert, other_cert, f"SSL_KEYFILE: {other_cert!r} is not a PEM "
                                                   "private key"),
    }[problem]
    message = refused({"SERVICES": "wss://:50004", "SSL_CERTFILE": cert, "SSL_KEYFILE": key})
    assert message.startswith(expected)


def test_an_unreadable_key(tmp_path):
    cert, _ = certs.self_signed(tmp_path)
    message = refused({"SERVICES": "ssl://:50002", "SSL_CERTFILE": cert,
                       "SSL_KEYFILE": str(tmp_path / "nope.key")})
    assert message.startswith("SSL_KEYFILE: cannot read")
