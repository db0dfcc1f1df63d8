"""Peer host names are resolved by the reactor's own name resolver, never for long."""

import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.interfaces import IHostnameResolver, IHostResolution
from zope.interface import implementer
from zope.interface.verify import verifyObject

from electrumx.network.manager import resolve_host


def resolve(host, on=reactor, **kwargs):
    return defer.Deferred.fromCoroutine(resolve_host(on, host, **kwargs))


@pytest_twisted.ensureDeferred
async def test_a_real_name_resolves_and_an_address_is_itself():
    assert "127.0.0.1" in await resolve("localhost")
    assert await resolve("192.0.2.7") == {"192.0.2.7"}
    assert await resolve("::ffff:192.0.2.7") == {"::ffff:192.0.2.7"}


@pytest_twisted.ensureDeferred
async def test_a_name_that_does_not_resolve_has_no_addresses():
    assert await resolve("no-such-host.invalid") == set()      # RFC 6761: never resolves


@implementer(IHostResolution)
class Resolution:
    def __init__(self, name):
        self.name = name

    def cancel(self):
        raise NotImplementedError


@implementer(IHostnameResolver)
class SilentResolver:
    """A resolver whose answer never comes (a name server that does not answer)."""

    def resolveHostName(self, resolutionReceiver, hostName, portNumber=0, addressTypes=None,
                        transportSemantics="TCP"):
        resolution = Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        return resolution


def test_a_name_server_that_does_not_answer_is_given_up_after_the_timeout():
    clock = task.Clock()
    clock.nameResolver = SilentResolver()
    assert verifyObject(IHostnameResolver, clock.nameResolver)
    d = resolve("slow.example.com", on=clock, timeout=10.0)
    clock.advance(9.9)
    assert not d.called
    clock.advance(0.1)
    assert d.result == set()
