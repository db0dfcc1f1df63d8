"""The peer manager against fake servers on 127.0.0.1: honest ones are listed, liars not."""

import types

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from electrumx.coins import BitcoinRegtest
from electrumx.config.services import Service
from electrumx.network.manager import PeerManager
from electrumx.network.peer import Peer
from electrumx.network.verifier import CheckLimits
from tests.fixtures.regtest import wait_for
from tests.network.fakes import DRIP, HEADERS, SILENT, our_reader, start_fake, stop_fakes

LIMITS = CheckLimits(connect_timeout=2, request_timeout=0.5, max_line=50_000,
                     max_total=200_000)


def peer_settings(**overrides):
    values = dict(coin=BitcoinRegtest, peer_discovery="on", peer_announce=True,
                  blacklist_url=None, peers="", peer_check_secs=600, peer_allow_loopback=True,
                  report_services=[Service("tcp", "127.0.0.1", 1)],
                  tor_proxy_host="127.0.0.1", tor_proxy_port=1, force_proxy=False)
    values.update(overrides)
    return types.SimpleNamespace(**values)


@pytest.fixture
def manager():
    made, fakes = [], []

    def make(**overrides):
        m = PeerManager(peer_settings(**overrides), our_reader(), reactor, limits=LIMITS)
        m.startService()
        m.start_discovery()
        made.append(m)
        return m
    make.fakes = fakes
    yield make
    for m in made:
        m.stopService()
    pytest_twisted.blockon(defer.ensureDeferred(stop_fakes(fakes)))


async def fake(manager, **behaviour):
    server = await start_fake(**behaviour)
    manager.fakes.append(server)
    return server


def features_of(server, **changes):
    return {"hosts": {"127.0.0.1": {"tcp_port": server.port}},
            "genesis_hash": BitcoinRegtest.GENESIS_HASH, "protocol_max": "1.4", **changes}


@pytest_twisted.ensureDeferred
async def test_an_honest_peer_is_verified_listed_and_told_of_us(manager):
    m = manager()
    server = await fake(manager)
    server.peers = [["127.0.0.1", "127.0.0.1", ["v1.4", "t9"]],       # learned
                    ["1.2.3.4", "10.0.0.1", ["t50001"]]]              # private: dropped
    assert await m.on_add_peer(features_of(server), "127.0.0.1") is True
    await wait_for(lambda: m.on_peers_subscribe(False))
    assert m.on_peers_subscribe(False) == [["127.0.0.1", "127.0.0.1", ["v1.4",
                                                                       f"t{server.port}"]]]
    assert server.calls[:4] == ["server.version", "server.features",
                                "blockchain.headers.subscribe", "blockchain.block.header"]
    [announced] = server.announced
    assert announced["hosts"] == {"127.0.0.1": {"tcp_port": 1}}
    assert announced["genesis_hash"] == BitcoinRegtest.GENESIS_HASH
    assert ("127.0.0.1", 9, None) in m.peers
    assert len(m.peers) == 2
    await wait_for(lambda: server.open == 0)


def huge(server, params):
    return b'{"id": 2, "result": "' + b"x" * 100_000


def many_lines(server, params):
    return b'{"method": "blockchain.headers.subscribe", "params": []}\n' * 5_000


HOSTILE = {
    "lying features (another port)": dict(**{"server.features": lambda s, p: features_of(
        types.SimpleNamespace(port=s.port + 1))}),
    "lying features (no hosts)": {"server.features": lambda s, p: {
        "genesis_hash": BitcoinRegtest.GENESIS_HASH}},
    "wrong genesis": {"server.features": lambda s, p: features_of(s, genesis_hash="00" * 32)},
    "headers of another chain": {"blockchain.block.header": lambda s, p: "ff" * 80},
    "a height far from ours": {"blockchain.headers.subscribe": lambda s, p: {
        "height": 5000, "hex": HEADERS[0].hex()}},
    "a slow responder": {"server.features": SILENT},
    "a slow drip of bytes": {"server.features": DRIP},
    "a huge response": {"server.features": huge},
    "a flood of small lines": {"server.features": many_lines},
    "garbage": {"server.features": lambda s, p: b"\x00not json\n"},
    "an unsupported version": {"server.version": lambda s, p: ["x", "0.9"]},
}


REASONS = {
    "lying features (another port)": "features do not list 127.0.0.1 with tcp port",
    "lying features (no hosts)": "features have no hosts",
    "wrong genesis": "wrong genesis hash",
    "headers of another chain": "is not ours (another chain)",
    "a height far from ours": "its height 5000 is far from ours (20)",
    "a slow responder": "server.features timed out after 0.5 s",
    "a slow drip of bytes": "server.features timed out after 0.5 s",
    "a huge response": "a line over 50,000 bytes",
    "a flood of small lines": "sent over 200,000 bytes",
    "garbage": "sent invalid JSON",
    "an unsupported version": "negotiated an unsupported version",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest_twisted.ensureDeferred
async def test_a_hostile_peer_is_rejected_and_remembered(manager, name):
    m = manager()
    server = await fake(manager, **HOSTILE[name])
    started = reactor.seconds()
    peer = Peer("127.0.0.1", server.port)
    assert m.add(peer)
    await wait_for(lambda: peer.last_try and peer.key not in m.checking)
    assert reactor.seconds() - started < 5, "bounded in time"
    assert not peer.last_good
    assert REASONS[name] in peer.bad_reason
    assert m.on_peers_subscribe(False) == []
    assert server.announced == []
    assert await m.on_add_peer(features_of(server), "127.0.0.1") is False
    await wait_for(lambda: server.open == 0)
    assert server.connections == 1


@pytest_twisted.ensureDeferred
async def test_thousands_of_add_peer_calls_are_rate_limited_and_checks_bounded(
        manager, monkeypatch):
    monkeypatch.setattr(PeerManager, "MAX_PER_HOST", 100)   # all fakes are on 127.0.0.1
    m = manager()
    slow = await fake(manager, **{"server.version": SILENT})
    accepted = 0
    for n in range(3000):
        features = {"hosts": {"127.0.0.1": {"tcp_port": slow.port, "ssl_port": 20000 + n}},
                    "genesis_hash": BitcoinRegtest.GENESIS_HASH}
        accepted += await m.on_add_peer(features, "127.0.0.1")
    assert accepted == PeerManager.ADD_PEER_BURST
    # Other sources cannot speak for 127.0.0.1.
    for n in range(50):
        assert await m.on_add_peer(features_of(slow), f"8.8.{n}.1") is False
    for n in range(40):
        m.add(Peer("127.0.0.1", slow.port, 30000 + n))
    await wait_for(lambda: slow.open >= PeerManager.MAX_CHECKS)
    assert len(m.checking) == PeerManager.MAX_CHECKS
    assert slow.open <= PeerManager.MAX_CHECKS
    await wait_for(lambda: all(p.last_try for p in m.peers.values()), timeout=30)
    assert m.on_peers_subscribe(False) == []


@pytest_twisted.ensureDeferred
async def test_known_peers_are_bounded(manager, monkeypatch):
    monkeypatch.setattr(PeerManager, "MAX_PEERS", 5)
    m = manager()
    m.discovering = False           # no checks: only the bookkeeping
    added = [m.add(Peer("127.0.0.1", 100 + n)) for n in range(20)]
    assert sum(added) == PeerManager.MAX_PER_HOST, "a few per host"
    added = [m.add(Peer(f"h{n}.example.com", 1)) for n in range(20)]
    assert sum(added) == 2 and len(m.peers) == 5


@pytest_twisted.ensureDeferred
async def test_peers_are_rechecked_and_stale_ones_forgotten(manager, monkeypatch):
    m = manager(peer_check_secs=1)
    server = await fake(manager)
    assert m.add(Peer("127.0.0.1", server.port))
    await wait_for(lambda: server.calls.count("server.version") >= 2, timeout=10)
    key = ("127.0.0.1", server.port, None)
    # A good peer turned liar is dropped from the list at its next check.
    server.behaviour["blockchain.block.header"] = lambda s, p: "ee" * 80
    await wait_for(lambda: m.peers[key].bad_reason, timeout=10)
    assert m.on_peers_subscribe(False) == []
    monkeypatch.setattr(PeerManager, "STALE_SECS", 0.0)
    m.forget_stale()
    assert key not in m.peers


@pytest_twisted.ensureDeferred
async def test_discovery_modes(manager):
    off = manager(peer_discovery="off", peers="127.0.0.1 t5")
    assert off.peers == {} and off.on_peers_subscribe(False) == []
    assert await off.on_add_peer({"hosts": {"127.0.0.1": {"tcp_port": 5}}}, "127.0.0.1") is False
    server = await fake(manager)
    me = manager(peer_discovery="self", report_services=[Service("tcp", "127.0.0.1",
                                                                 server.port)])
    await wait_for(lambda: me.on_peers_subscribe(False))
    assert me.on_peers_subscribe(False) == [["127.0.0.1", "127.0.0.1",
                                             ["v1.4", f"t{server.port}"]]]
    assert server.announced == [] and "server.peers.subscribe" not in server.calls
    assert await me.on_add_peer(features_of(server), "127.0.0.1") is False
    seeded = manager(peers=f"127.0.0.1 t{server.port}, bad..host t")
    assert list(seeded.peers) == [("127.0.0.1", server.port, None)]


def test_announcing_leaves_out_private_hosts():
    services = [Service("tcp", "127.0.0.1", 50001), Service("tcp", "10.1.2.3", 50001),
                Service("ssl", "electrum.example.com", 50002)]
    m = PeerManager(peer_settings(report_services=services, peer_allow_loopback=False),
                    our_reader(), reactor)
    assert m.announce_features()["hosts"] == {"electrum.example.com": {"ssl_port": 50002}}
    assert m.announce_features()["services"] == ["ssl://electrum.example.com:50002"]
    m.settings.report_services = services[:2]
    assert m.announce_features() is None
    m.settings.peer_allow_loopback = True
    m.allow_loopback = True
    assert m.announce_features()["hosts"] == {"127.0.0.1": {"tcp_port": 50001}}
    m.settings.peer_announce = False
    assert m.announce_features() is None


@pytest_twisted.ensureDeferred
async def test_an_unreachable_peer_is_retried_with_backoff_not_banned(manager):
    m = manager(peer_check_secs=5)
    server = await fake(manager)
    port = server.port
    await server.listening.stopListening()
    peer = Peer("127.0.0.1", port)
    m.add(peer)
    await wait_for(lambda: peer.failures == 1 and peer.key not in m.checking)
    assert peer.bad_reason.startswith("cannot connect to 127.0.0.1")
    assert peer.next_check - peer.last_try == pytest.approx(5, abs=0.5)
    await m.check(peer)
    assert peer.next_check - peer.last_try == pytest.approx(10, abs=0.5)
    await m.check(peer)
    assert peer.failures == 3


@pytest_twisted.ensureDeferred
async def test_a_peer_that_lists_us_is_not_told_again(manager):
    m = manager()
    server = await fake(manager)
    server.peers = [["127.0.0.1", "127.0.0.1", ["t1"]]]
    peer = Peer("127.0.0.1", server.port)
    m.add(peer)
    await wait_for(lambda: peer.last_good)
    assert server.announced == [] and "server.add_peer" not in server.calls
    assert list(m.peers) == [peer.key], "we are not our own peer"
    # A reminder about a known peer is answered without using the rate limit.
    for _ in range(10):
        assert await m.on_add_peer(features_of(server), "127.0.0.1") is True


@pytest_twisted.ensureDeferred
async def test_blacklisted_hosts_are_neither_checked_nor_listed(manager, tmp_path):
    path = tmp_path / "blacklist.json"
    path.write_bytes(b'["127.0.0.1"]')
    m = manager(blacklist_url=str(path))
    await wait_for(lambda: m.blacklist)
    server = await fake(manager)
    assert not m.add(Peer("127.0.0.1", server.port))
    assert await m.on_add_peer(features_of(server), "127.0.0.1") is False
    assert server.connections == 0


@pytest_twisted.ensureDeferred
async def test_a_long_peer_list_yields_two_new_peers_per_check(manager, monkeypatch):
    monkeypatch.setattr(PeerManager, "MAX_PER_HOST", 100)
    m = manager()
    server = await fake(manager)
    server.peers = [["127.0.0.1", "127.0.0.1", [f"t{40000 + n}"]] for n in range(200)]
    peer = Peer("127.0.0.1", server.port)
    m.add(peer)
    await wait_for(lambda: peer.last_good)
    assert len(m.peers) == 1 + PeerManager.LEARN_PER_CHECK
    assert server.calls.count("server.peers.subscribe") == 1


@pytest_twisted.ensureDeferred
async def test_add_peer_checks_the_name_resolves_to_the_caller_and_limits_each_domain(
        manager):
    m = manager(peer_allow_loopback=False)
    resolved = {f"s{n}.example.com": {f"8.8.{n}.8"} for n in range(10)}
    m.resolve = lambda host: defer.succeed(resolved.get(host, set()))
    m.kick = lambda: None                  # bookkeeping only: these hosts are not real

    def features(n):
        return {"hosts": {f"s{n}.example.com": {"ssl_port": 50002}}}
    assert await m.on_add_peer(features(0), "9.9.9.9") is False, "resolves elsewhere"
    assert await m.on_add_peer(features(0), "::ffff:8.8.0.8") is True
    assert m.peers[("s0.example.com", None, 50002)].source == "add_peer 8.8.0.8"
    results = [await m.on_add_peer(features(n), f"8.8.{n}.8") for n in range(1, 10)]
    # Refusals count too: the third example.com request of the minute was the last.
    assert results == [True] + [False] * 8, "example.com used up its rate"
    assert await m.on_add_peer({"hosts": {"unknown.example.org": {"tcp_port": 1}}},
                               "8.8.8.8") is False


@pytest_twisted.ensureDeferred
async def test_a_blacklisted_address_is_not_listed(manager, tmp_path):
    m = manager()
    server = await fake(manager)
    peer = Peer("127.0.0.1", server.port)
    m.add(peer)
    await wait_for(lambda: m.on_peers_subscribe(False))
    path = tmp_path / "blacklist.json"
    path.write_bytes(b'["127.0.0.1"]')
    m.settings.blacklist_url = str(path)
    await m.refresh_blacklist()
    assert m.on_peers_subscribe(False) == []


@pytest_twisted.ensureDeferred
async def test_the_admin_view_and_add_peer(manager):
    m = manager()
    server = await fake(manager)
    assert m.add_from_admin(f"127.0.0.1 t{server.port}") == {
        "peer": f"127.0.0.1 t{server.port}", "added": True, "checking": True}
    key = ("127.0.0.1", server.port, None)
    await wait_for(lambda: m.peers[key].last_good)
    [row] = m.admin_rows()
    assert row["status"] == "good" and row["source"] == "admin"
    assert row["server_version"] == "fake 1.0" and row["failures"] == 0
    assert m.add_from_admin(f"127.0.0.1 t{server.port}")["checking"] is True
    await wait_for(lambda: server.calls.count("server.version") == 2)
    with pytest.raises(ValueError, match="bad peer"):
        m.add_from_admin("localhost t1")


def test_checks_go_out_from_our_public_listening_address():
    def bind(services, allow_loopback=False):
        settings = peer_settings(services=services, peer_allow_loopback=allow_loopback)
        return PeerManager(settings, our_reader(), reactor).bind_address
    assert bind([Service("rpc", "8.8.8.8", 8000), Service("tcp", "8.8.4.4", 50001)]) == \
        "8.8.4.4"
    assert bind([Service("tcp", "127.0.0.1", 50001), Service("ssl", "", 50002)]) is None
    assert bind([Service("tcp", "10.0.0.1", 50001), Service("ssl", "x.example.com", 1)]) \
        is None
    assert bind([Service("tcp", "127.0.0.1", 50001)], allow_loopback=True) == "127.0.0.1"
