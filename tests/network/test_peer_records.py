"""Pure parts of the peer network: hosts, features, entries, buckets, the blacklist."""

import random

import pytest
import pytest_twisted
from twisted.internet import endpoints, reactor
from twisted.internet.task import Clock
from twisted.web import resource, server

from electrumx.network.blacklist import (BlacklistError, fetch_blacklist, is_blacklisted,
                                         parse_blacklist)
from electrumx.network.buckets import bucket_of, pick_per_bucket
from electrumx.network.manager import RateLimiter, plain_address
from electrumx.network.peer import (Peer, PeerError, check_host, peer_from_entry,
                                    peers_from_features)


class JSONFile(resource.Resource):
    isLeaf = True

    def __init__(self, files):
        super().__init__()
        self.files = files

    def render_GET(self, request):
        if request.path not in self.files:
            request.setResponseCode(404)
            return b"no"
        return self.files[request.path]


@pytest.mark.parametrize("host, allow_loopback, expected", [
    ("Electrum.Example.COM", False, "electrum.example.com"),
    ("electrum.example.com.", False, "electrum.example.com"),
    ("8.8.8.8", False, "8.8.8.8"),
    ("2001:4860::8888", False, "2001:4860::8888"),
    ("127.0.0.1", True, "127.0.0.1"),
    ("::1", True, "::1"),
])
def test_good_hosts(host, allow_loopback, expected):
    assert check_host(host, allow_loopback) == expected


@pytest.mark.parametrize("host", [
    "127.0.0.1", "::1", "localhost", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.1.1",
    "fe80::1", "0.0.0.0", "224.0.0.1", "printer.local", "x.internal", "nodots", "a..b",
    "-bad.example.com", "x" * 300, "ünicode.example.com", "1.2.3", "", None, 12,
    "abc.onion",
])
def test_bad_hosts(host):
    with pytest.raises(PeerError):
        check_host(host)


def test_peers_from_features():
    features = {"hosts": {"a.example.com": {"tcp_port": 50001, "ssl_port": 50002},
                          "10.0.0.1": {"tcp_port": 50001},
                          "b.example.com": {}},
                "protocol_max": "1.6.0", "server_version": "ElectrumX 1.18", "pruning": None}
    [peer] = peers_from_features(features, "add_peer")
    assert peer.key == ("a.example.com", 50001, 50002)
    assert peer.protocol_max == "1.6" and peer.source == "add_peer"
    assert peer.subscribe_entry() == ["a.example.com", "a.example.com",
                                      ["v1.6", "s50002", "t50001"]]
    assert peer.real_name() == "a.example.com v1.6 s50002 t50001"


@pytest.mark.parametrize("features", [
    None, [], {}, {"hosts": []}, {"hosts": {}},
    {"hosts": {f"h{n}.example.com": {"tcp_port": 1} for n in range(9)}},
    {"hosts": {"a.example.com": {"tcp_port": "50001"}}},
    {"hosts": {"a.example.com": {"tcp_port": 70000}}},
    {"hosts": {"a.example.com": {"tcp_port": True}}},
    {"hosts": {"a.example.com": 50001}},
    {"hosts": {"a.example.com": {"tcp_port": 1}}, "protocol_max": "one"},
    {"hosts": {"a.example.com": {"tcp_port": 1}}, "pruning": "yes"},
])
def test_malformed_features(features):
    with pytest.raises(PeerError):
        peers_from_features(features, "x")


def test_entries_and_seeds():
    peer = peer_from_entry(["1.2.3.4", "a.example.com", ["v1.4", "s50002", "t"]], "peer x",
                           default_ports=(50001, 50002))
    assert peer.key == ("a.example.com", 50001, 50002) and peer.protocol_max == "1.4"
    seed = peer_from_entry("b.example.com s t51001", "seed", default_ports=(50001, 50002))
    assert seed.key == ("b.example.com", 51001, 50002)
    for bad in (["x"], ["1.2.3.4", "a.example.com", "t"], "a.example.com v1.4",
                "a.example.com tx", "a.example.com t99999", "localhost t",
                ["1", "a.example.com", ["t"] * 20]):
        with pytest.raises(PeerError):
            peer_from_entry(bad, "x", default_ports=(1, 2))


def test_buckets():
    assert bucket_of("1.2.3.4") == "1.2.0.0/16"
    assert bucket_of("2001:db8:1:2ff::1") == "2001:db8:1:200::/56"
    assert bucket_of("name.example.com") == "name.example.com"
    peers = ([Peer(f"h{n}.example.com", 1, ip_addr=f"1.2.{n}.1") for n in range(5)]
             + [Peer(f"g{n}.example.com", 1, ip_addr=f"1.3.0.{n}") for n in range(3)]
             + [Peer(f"v{n}.example.com", 1, ip_addr=f"2001:db8:0:{n}::1") for n in range(4)]
             + [Peer("w.example.com", 1, ip_addr="2001:db8:0:100::1"),
                Peer("x.example.com", 1, ip_addr="9.9.9.9")])
    chosen = pick_per_bucket(peers, random.Random(1))
    by_bucket = {}
    for peer in chosen:
        by_bucket.setdefault(bucket_of(peer.ip_addr), []).append(peer.host)
    assert {b: len(h) for b, h in by_bucket.items()} == {
        "1.2.0.0/16": 2, "1.3.0.0/16": 2, "2001:db8::/56": 2, "2001:db8:0:100::/56": 1,
        "9.9.0.0/16": 1}
    seen = {p.host for _ in range(50) for p in pick_per_bucket(peers, random.Random(_))}
    assert {f"h{n}.example.com" for n in range(5)} <= seen, "members take turns"


def test_rate_limiter():
    clock = Clock()
    limiter = RateLimiter(clock, burst=3, interval=60)
    assert [limiter.allow("a") for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("b")
    clock.advance(59)
    assert not limiter.allow("a")
    clock.advance(2)
    assert limiter.allow("a") and not limiter.allow("a")
    assert plain_address("::ffff:1.2.3.4") == "1.2.3.4" and plain_address("::1") == "::1"


def test_blacklist_patterns():
    patterns = parse_blacklist(b'["bad.example.com", "*.evil.org", " 1.2.3.4 "]')
    assert is_blacklisted("bad.example.com", patterns)
    assert is_blacklisted("a.b.evil.org", patterns) and is_blacklisted("1.2.3.4", patterns)
    assert not is_blacklisted("evil.org", patterns)
    assert not is_blacklisted("good.example.com", patterns)
    for bad in (b"{", b'{"a": 1}', b"[1, 2]"):
        with pytest.raises(BlacklistError):
            parse_blacklist(bad)


@pytest_twisted.ensureDeferred
async def test_blacklist_from_a_file_and_over_http(tmp_path):
    path = tmp_path / "blacklist.json"
    path.write_bytes(b'["bad.example.com"]')
    assert await fetch_blacklist(reactor, str(path)) == {"bad.example.com"}
    assert await fetch_blacklist(reactor, f"file://{path}") == {"bad.example.com"}
    site = server.Site(JSONFile({b"/blacklist.json": b'["*.evil.org"]',
                                 b"/huge.json": b"[" + b'"a.b",' * 300_000 + b'"c.d"]'}))
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    base = f"http://127.0.0.1:{port.getHost().port}"
    try:
        assert await fetch_blacklist(reactor, base + "/blacklist.json") == {"*.evil.org"}
        with pytest.raises(BlacklistError, match="HTTP status 404"):
            await fetch_blacklist(reactor, base + "/missing.json")
        with pytest.raises(BlacklistError, match="over 1,000,000 bytes"):
            await fetch_blacklist(reactor, base + "/huge.json")
    finally:
        await port.stopListening()
    with pytest.raises(BlacklistError):
        await fetch_blacklist(reactor, str(tmp_path / "missing.json"))
