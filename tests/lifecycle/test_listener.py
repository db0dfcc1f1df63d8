"""The Listener service over real sockets on 127.0.0.1: one policy when it cannot listen,
and no port left listening when it is stopped while a listen is under way.  A busy port
stopping the whole server with status 1 is in test_exit_status.py."""

import socket

import pytest_twisted
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import defer, endpoints, protocol, reactor
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import LogLevel, globalLogPublisher
from zope.interface import implementer
from zope.interface.verify import verifyObject

from electrumx.config.services import Service
from electrumx.listener import Listener, ReportingEndpoint
from tests.fixtures.host import free_port
from tests.fixtures.regtest import wait_for


class Counted(protocol.Protocol):
    def connectionMade(self):
        self.factory.connections += 1


def counting_factory():
    factory = protocol.Factory.forProtocol(Counted)
    factory.noisy = False
    factory.connections = 0
    return factory


@implementer(IStreamServerEndpoint)
class SlowEndpoint:
    """127.0.0.1:`port`, whose listen completes only on `finish()`, as an onion endpoint's
    waits for Tor.  Its Deferred has no canceller, like many endpoints'."""

    def __init__(self, port):
        self.port = port
        self.pending = []

    def listen(self, factory):
        listening = defer.Deferred()
        self.pending.append((listening, factory))
        return listening

    def finish(self):
        for listening, factory in self.pending:
            endpoint = endpoints.TCP4ServerEndpoint(reactor, self.port, interface="127.0.0.1")
            endpoint.listen(factory).chainDeferred(listening)


def accepts(port) -> bool:
    """Whether something listens on 127.0.0.1:`port` (the kernel completes the handshake)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest_twisted.ensureDeferred
async def test_a_listener_stopped_while_its_listen_is_under_way_leaves_no_port():
    port = free_port()
    slow = SlowEndpoint(port)
    failures = []
    listener = Listener(slow, counting_factory(), "tcp", f"127.0.0.1:{port}", failures.append)
    listener.startService()
    await defer.maybeDeferred(listener.stopService)
    slow.finish()                       # the listen completes after the stop
    await wait_for(lambda: not accepts(port), timeout=5)
    assert listener.port is None and failures == []


def test_a_listener_is_twisteds_endpoint_service_on_a_reporting_endpoint():
    listener = Listener(SlowEndpoint(free_port()), counting_factory(), "tcp", "127.0.0.1:1",
                        on_failure=print)
    assert isinstance(listener, StreamServerEndpointService)
    assert isinstance(listener.endpoint, ReportingEndpoint)
    verifyObject(IStreamServerEndpoint, listener.endpoint)


def test_a_listener_never_started_stops_quietly():
    """As the listeners after a child that failed to start, when the server stops."""
    listener = Listener(SlowEndpoint(free_port()), counting_factory(), "tcp", "127.0.0.1:1",
                        on_failure=print)
    assert listener.stopService() is None and not listener.running


@pytest_twisted.ensureDeferred
async def test_a_listener_that_cannot_listen_says_so_once_with_its_address():
    failures = []
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        await a_busy_listener_reports(failures)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert [event for event in logged if event["log_level"] >= LogLevel.error] == [], \
        "the policy alone reports it: the service logs no unhandled error"


async def a_busy_listener_reports(failures):
    first = Listener.serving(reactor, "tcp", Service("tcp", "127.0.0.1", 0), counting_factory(),
                             on_failure=failures.append)
    first.startService()
    port = first.port.getHost().port
    busy = Listener.serving(reactor, "admin-rpc", Service("rpc", "127.0.0.1", port),
                            counting_factory(), on_failure=failures.append)
    busy.startService()
    assert failures == [f"cannot listen for admin-rpc on 127.0.0.1:{port}: Address already in "
                        "use"]
    assert busy.port is None
    await defer.maybeDeferred(busy.stopService)
    await first.stopService()
    assert failures == [f"cannot listen for admin-rpc on 127.0.0.1:{port}: Address already in "
                        "use"]


@pytest_twisted.ensureDeferred
async def test_a_listener_serves_again_after_a_restart():
    factory = counting_factory()
    failures = []
    listener = Listener.serving(reactor, "tcp", Service("tcp", "127.0.0.1", free_port()),
                                factory, on_failure=failures.append)
    listener.privilegedStartService()           # as twistd does, before startService
    listener.startService()
    port = listener.port.getHost().port
    await listener.stopService()
    assert not accepts(port)
    listener.startService()
    assert listener.port.getHost().port == port and accepts(port)
    await wait_for(lambda: factory.connections == 1)
    await listener.stopService()
    assert failures == []
