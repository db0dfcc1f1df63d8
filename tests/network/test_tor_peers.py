"""Onion peers through a SOCKS5 proxy on 127.0.0.1 (a stand-in for tor's SOCKS port)."""

import types

import pytest_twisted
from twisted.internet import reactor

from electrumx.coins import BitcoinRegtest
from electrumx.network.directory import NoPeers
from electrumx.network.manager import PeerManager
from electrumx.network.peer import Peer
from electrumx.network.tor import detect_proxy, is_onion
from electrumx.network.verifier import CheckLimits
from electrumx.protocol.methods import ElectrumMethods
from tests.fixtures.regtest import wait_for
from tests.network.fakes import SILENT, our_reader, start_fake, stop_fakes
from tests.network.socks5 import start_socks5
from tests.network.test_hostile_peers import peer_settings

ONION = "a" * 52 + "wxyz.onion"
OTHER_ONION = "b" * 56 + ".onion"
LIMITS = CheckLimits(connect_timeout=2, request_timeout=0.5, proxy_connect_timeout=2,
                     proxy_request_timeout=0.5)


def onion_features(server, host=ONION):
    return {"hosts": {host: {"tcp_port": server.port}},
            "genesis_hash": BitcoinRegtest.GENESIS_HASH, "protocol_max": "1.4"}


async def started_manager(proxy_port, expect_proxy=True, **overrides):
    m = PeerManager(peer_settings(tor_proxy_host="127.0.0.1", tor_proxy_port=proxy_port,
                                  **overrides), our_reader(), reactor, limits=LIMITS)
    m.startService()
    m.start_discovery()
    if expect_proxy:
        await wait_for(lambda: m.proxy is not None)
    return m


@pytest_twisted.ensureDeferred
async def test_the_proxy_is_detected_only_where_socks5_answers():
    proxy = await start_socks5()
    fake = await start_fake()
    try:
        found = await detect_proxy(reactor, "127.0.0.1", proxy.port)
        assert (found.host, found.port) == ("127.0.0.1", proxy.port)
        assert found.addresses() == {"127.0.0.1"}
        assert await detect_proxy(reactor, "127.0.0.1", fake.port, 0.3) is None  # silent
        await fake.listening.stopListening()
        assert await detect_proxy(reactor, "127.0.0.1", fake.port) is None   # closed
    finally:
        await proxy.listening.stopListening()
    assert is_onion(ONION) and not is_onion("abc.onion") and not is_onion("a.example.com")


@pytest_twisted.ensureDeferred
async def test_an_onion_peer_is_checked_through_the_proxy_and_listed():
    fake = await start_fake(**{"server.features": lambda s, p: onion_features(s)})
    proxy = await start_socks5({ONION: "127.0.0.1"})
    m = await started_manager(proxy.port)
    try:
        assert await m.on_add_peer(onion_features(fake), "127.0.0.1") is True
        # One new onion peer by add_peer per ONION_ADD_INTERVAL.
        assert await m.on_add_peer(onion_features(fake, OTHER_ONION), "127.0.0.1") is False
        await wait_for(lambda: m.on_peers_subscribe(True))
        assert m.on_peers_subscribe(True) == [[ONION, ONION, ["v1.4", f"t{fake.port}"]]]
        assert m.on_peers_subscribe(False) == m.on_peers_subscribe(True)
        assert proxy.connects == [(ONION, fake.port)]
        assert m.peers[(ONION, fake.port, None)].ip_addr is None
        # Clients coming from the proxy's address are Tor clients.
        methods = types.SimpleNamespace(peers=m)
        assert ElectrumMethods.is_tor_client(methods, "127.0.0.1")
        assert not ElectrumMethods.is_tor_client(methods, "8.8.8.8")
        assert not ElectrumMethods.is_tor_client(types.SimpleNamespace(peers=NoPeers()),
                                                 "127.0.0.1")
    finally:
        m.stopService()
        await proxy.listening.stopListening()
        await stop_fakes([fake])


@pytest_twisted.ensureDeferred
async def test_a_slow_onion_peer_is_bounded_by_the_proxy_timeouts():
    fake = await start_fake(**{"server.version": SILENT})
    proxy = await start_socks5({ONION: "127.0.0.1"})
    m = await started_manager(proxy.port)
    try:
        peer = Peer(ONION, fake.port, is_seed=True)
        m.add(peer)
        await wait_for(lambda: peer.bad_reason, timeout=5)
        assert peer.bad_reason == "server.version timed out after 0.5 s"
    finally:
        m.stopService()
        await proxy.listening.stopListening()
        await stop_fakes([fake])


@pytest_twisted.ensureDeferred
async def test_force_proxy_sends_every_check_through_the_proxy():
    fake = await start_fake()
    proxy = await start_socks5()
    m = await started_manager(proxy.port, force_proxy=True)
    try:
        peer = Peer("127.0.0.1", fake.port)
        m.add(peer)
        await wait_for(lambda: peer.last_good)
        assert proxy.connects == [("127.0.0.1", fake.port)]
    finally:
        m.stopService()
        await proxy.listening.stopListening()
        await stop_fakes([fake])


@pytest_twisted.ensureDeferred
async def test_without_a_proxy_onion_peers_are_left_alone():
    fake = await start_fake()
    closed = await start_fake()
    await closed.listening.stopListening()
    m = await started_manager(closed.port, expect_proxy=False)
    try:
        await m.find_proxy()
        assert m.proxy is None
        assert await m.on_add_peer(onion_features(fake), "127.0.0.1") is False
        assert not m.add(Peer(ONION, 50001))
        assert not m.is_tor_client("127.0.0.1")
    finally:
        m.stopService()
        await stop_fakes([fake])
