"""server.* methods, server.version through `negotiate`, and the version->method table."""

import re
import types

import pytest
from twisted.internet import defer
from zope.interface import implementer
from zope.interface.verify import verifyObject

from electrumx import SERVER_VERSION, __version__
from electrumx.interfaces import IPeerDirectory
from electrumx.protocol.banner import DEFAULT_BANNER, daemon_version_string
from electrumx.protocol.errors import BAD_REQUEST, DAEMON_ERROR, ReplyAndDisconnect, RPCError
from electrumx.protocol.methods import ElectrumMethods
from tests.protocol.test_methods_support import DaemonError, FakeSession, make_methods, resolve
from tests.protocol.test_methods_support import node  # noqa: F401  (a fixture)

COMMON = {
    "server.version", "server.features", "server.banner", "server.donation_address",
    "server.ping", "server.peers.subscribe", "server.add_peer",
    "blockchain.headers.subscribe", "blockchain.block.header", "blockchain.block.headers",
    "blockchain.estimatefee", "blockchain.transaction.broadcast", "blockchain.transaction.get",
    "blockchain.transaction.get_merkle", "blockchain.transaction.id_from_pos",
    "mempool.get_fee_histogram",
}
SCRIPTHASH = {
    "blockchain.scripthash.get_balance", "blockchain.scripthash.get_history",
    "blockchain.scripthash.get_mempool", "blockchain.scripthash.listunspent",
    "blockchain.scripthash.subscribe",
}
SCRIPTPUBKEY = {
    "blockchain.scriptpubkey.get_balance", "blockchain.scriptpubkey.get_history",
    "blockchain.scriptpubkey.get_mempool", "blockchain.scriptpubkey.listunspent",
    "blockchain.scriptpubkey.subscribe", "blockchain.scriptpubkey.unsubscribe",
}
OUTPOINT = {
    "blockchain.outpoint.subscribe", "blockchain.outpoint.get_status",
    "blockchain.outpoint.unsubscribe",
}


@pytest.mark.parametrize("version, added, absent", [
    ((1, 4), SCRIPTHASH | {"blockchain.relayfee"},
     {"blockchain.scripthash.unsubscribe", "mempool.get_info",
      "blockchain.transaction.broadcast_package"}),
    ((1, 4, 1), SCRIPTHASH | {"blockchain.relayfee"},
     {"blockchain.scripthash.unsubscribe", "mempool.get_info"}),
    ((1, 4, 2), SCRIPTHASH | {"blockchain.relayfee", "blockchain.scripthash.unsubscribe"},
     {"mempool.get_info", "blockchain.transaction.broadcast_package"}),
    ((1, 6), SCRIPTHASH | {"blockchain.scripthash.unsubscribe", "mempool.get_info",
                           "blockchain.transaction.broadcast_package"},
     {"blockchain.relayfee", "mempool.recent"} | OUTPOINT),
    ((1, 7), SCRIPTPUBKEY | OUTPOINT | {"mempool.get_info", "mempool.recent",
                             "blockchain.transaction.broadcast_package",
                             "blockchain.transaction.testmempoolaccept"},
     SCRIPTHASH | {"blockchain.relayfee", "blockchain.scripthash.unsubscribe"}),
])
def test_methods_by_version(node, version, added, absent):
    methods = make_methods(node)
    assert set(methods.table(version)) == COMMON | added
    session = FakeSession(version=version)
    for name in absent:
        assert methods.handler(session, name) is None
    assert methods.handler(session, "blockchain.address.get_history") is None


def test_notifications_from_1_7_run_notification_handlers_only(node):
    methods = make_methods(node)
    new, old = FakeSession(version=(1, 7)), FakeSession(version=(1, 6))
    assert methods.handler(new, "server.ping", True) == methods.server.ping_notification
    assert methods.handler(new, "server.ping") == methods.server.ping_with_padding
    assert methods.handler(new, "blockchain.scriptpubkey.get_history", True) is None
    assert methods.handler(old, "server.ping", True) == methods.server.ping
    assert methods.handler(old, "blockchain.scripthash.get_history", True) is not None
    assert methods.handler(new, "server.ping", True)(new, "00ff") is None
    with pytest.raises(RPCError) as caught:
        methods.handler(new, "server.ping", True)(new, "xyz")
    assert caught.value.code == BAD_REQUEST


def test_no_handlers_before_negotiation(node):
    session = FakeSession(version=None)
    assert make_methods(node).handler(session, "server.ping") is None


def test_negotiate_positional_and_named(node):
    methods = make_methods(node)
    session = FakeSession(version=None)
    assert methods.negotiate(session, ["Electrum 4.5.8", ["1.4", "1.6"]]) == [SERVER_VERSION,
                                                                             "1.6"]
    assert session.protocol_version == (1, 6)
    assert session.client_name == "Electrum 4.5.8"
    assert session.cost == 0.5
    other = FakeSession(version=None)
    assert methods.negotiate(other, {"client_name": "x", "protocol_version": "1.4.2"})[1] == \
        "1.4.2"
    assert other.protocol_version == (1, 4, 2)


def test_negotiate_defaults_and_ignores_extra_args(node):
    methods = make_methods(node)
    session = FakeSession(version=None)
    assert methods.negotiate(session, []) == [SERVER_VERSION, "1.4"]
    assert session.client_name == ""
    session = FakeSession(version=None)
    assert methods.negotiate(session, ["c", "1.6", "future", 7])[1] == "1.6"
    session = FakeSession(version=None)
    assert methods.negotiate(session, {"client_name": "c", "later": 1})[1] == "1.4"


def test_second_server_version_is_refused(node):
    methods = make_methods(node)
    session = FakeSession(version=None)
    methods.negotiate(session, ["c", "1.4"])
    with pytest.raises(RPCError) as caught:
        methods.negotiate(session, ["c", "1.6"])
    assert not isinstance(caught.value, ReplyAndDisconnect)
    assert caught.value.code == BAD_REQUEST and "already" in caught.value.message
    assert session.protocol_version == (1, 4)
    # The table's server.version is the same handler.
    with pytest.raises(RPCError):
        methods.handler(session, "server.version")(session, "c", "1.4")


@pytest.mark.parametrize("request_", ["1.3", "2.0", ["1.8", "1.9"], "junk", 14])
def test_unsupported_version_replies_and_disconnects(node, request_):
    session = FakeSession(version=None)
    with pytest.raises(ReplyAndDisconnect) as caught:
        make_methods(node).negotiate(session, ["c", request_])
    assert caught.value.code == BAD_REQUEST
    assert session.protocol_version is None


def test_negotiate_rejects_non_list_params(node):
    with pytest.raises(RPCError):
        make_methods(node).negotiate(FakeSession(version=None), "1.4")


def test_drop_client_and_long_names(node):
    methods = make_methods(node, drop_client=re.compile(r"EvilWallet"))
    with pytest.raises(ReplyAndDisconnect, match="unsupported client"):
        methods.negotiate(FakeSession(version=None), ["EvilWallet 1.0", "1.4"])
    session = FakeSession(version=None)
    methods.negotiate(session, ["x" * 500, "1.4"])
    assert session.client_name == "x" * 100
    session = FakeSession(version=None)
    methods.negotiate(session, [["not", "a", "string"], "1.4"])
    assert session.client_name == "['not', 'a', 'string']"


class Service(types.SimpleNamespace):
    def __str__(self):
        return f"{self.protocol}://{self.host}:{self.port}"


def test_features(node):
    services = [Service(protocol="tcp", host="example.org", port=50001),
                Service(protocol="ssl", host="example.org", port=50002),
                Service(protocol="tcp", host="abc.onion", port=50001)]
    methods = make_methods(node, report_services=services)
    session = FakeSession()
    features = methods.handler(session, "server.features")(session)
    assert features == {
        "hosts": {"example.org": {"tcp_port": 50001, "ssl_port": 50002},
                  "abc.onion": {"tcp_port": 50001}},
        "pruning": None,
        "server_version": SERVER_VERSION,
        "protocol_min": "1.4",
        "protocol_max": "1.7",
        "genesis_hash": node.db.coin.GENESIS_HASH,
        "hash_function": "sha256",
        "services": ["tcp://example.org:50001", "ssl://example.org:50002",
                     "tcp://abc.onion:50001"],
    }
    session = FakeSession(version=(1, 7))
    at_1_7 = methods.handler(session, "server.features")(session)
    assert "hash_function" not in at_1_7 and at_1_7.pop("history_pagination") is True
    del features["hash_function"]
    assert at_1_7 == features


def call(methods, session, name, *args):
    return resolve(methods.handler(session, name)(session, *args))


def test_ping_and_donation_address(node):
    methods = make_methods(node, donation_address="bcrt1qexample")
    session = FakeSession(version=(1, 4))
    assert call(methods, session, "server.ping") is None
    assert call(methods, session, "server.donation_address") == "bcrt1qexample"
    assert session.cost == pytest.approx(0.2)


def test_default_banner(node):
    assert call(make_methods(node), FakeSession(), "server.banner") == DEFAULT_BANNER
    assert node.daemon.calls == []


def test_banner_file_substitutions(node, tmp_path):
    banner = tmp_path / "banner.txt"
    banner.write_text("v=$SERVER_VERSION sub=$SERVER_SUBVERSION d=$DAEMON_VERSION "
                      "ds=$DAEMON_SUBVERSION give=$DONATION_ADDRESS ✓", encoding="utf-8")
    methods = make_methods(node, banner_file=str(banner), donation_address="bcrt1qgive")
    assert call(methods, FakeSession(), "server.banner") == (
        f"v={__version__} sub={SERVER_VERSION} d=29.1.0 ds=/Satoshi:29.1.0/ give=bcrt1qgive ✓")


def test_tor_sessions_get_the_tor_banner(node, tmp_path):
    (tmp_path / "clear.txt").write_text("clearnet")
    (tmp_path / "tor.txt").write_text("onion $SERVER_VERSION")
    methods = make_methods(node, banner_file=str(tmp_path / "clear.txt"),
                           tor_banner_file=str(tmp_path / "tor.txt"))
    assert call(methods, FakeSession(is_tor=True), "server.banner") == f"onion {__version__}"
    assert call(methods, FakeSession(is_tor=False), "server.banner") == "clearnet"
    # Without a Tor banner, Tor sessions get the ordinary one.
    methods = make_methods(node, banner_file=str(tmp_path / "clear.txt"))
    assert call(methods, FakeSession(is_tor=True), "server.banner") == "clearnet"
    assert node.daemon.calls == []       # no $DAEMON_ placeholders: the node is not asked


def test_unreadable_banner_falls_back(node, tmp_path):
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9")
    for path in (tmp_path / "missing.txt", tmp_path / "latin1.txt"):
        methods = make_methods(node, banner_file=str(path))
        assert call(methods, FakeSession(), "server.banner") == DEFAULT_BANNER


def test_banner_daemon_failure_is_a_daemon_error(node, tmp_path):
    (tmp_path / "b.txt").write_text("$DAEMON_VERSION")
    node.daemon.network_info = lambda: defer.fail(DaemonError(-28, "Loading block index"))
    with pytest.raises(RPCError) as caught:
        call(make_methods(node, banner_file=str(tmp_path / "b.txt")), FakeSession(),
             "server.banner")
    assert caught.value.code == DAEMON_ERROR and "Loading block index" in caught.value.message


def test_daemon_version_string():
    assert daemon_version_string(290100) == "29.1.0"
    assert daemon_version_string(170001) == "17.0.1"


@implementer(IPeerDirectory)
class Peers:
    """A peer directory that knows one peer, recording what it is asked."""

    def __init__(self):
        self.calls = []

    def on_peers_subscribe(self, is_tor=False):
        self.calls.append(("subscribe", is_tor))
        return [["1.2.3.4", "peer.example", ["v1.6", "s50002", "t50001"]]]

    def on_add_peer(self, features, source_addr):
        self.calls.append(("add", features, source_addr))
        return True

    def is_tor_client(self, address):
        return False


def test_peers_without_and_with_a_peer_manager(node):
    session = FakeSession(remote_address="10.1.2.3", is_tor=True)
    methods = make_methods(node)
    assert call(methods, session, "server.peers.subscribe") == []
    assert call(methods, session, "server.add_peer", {"hosts": {}}) is False
    peers = Peers()
    assert verifyObject(IPeerDirectory, peers)
    methods = ElectrumMethods(reader=node.reader, settings=methods.settings,
                              subscriptions=methods.subscriptions, peers=peers, clock=None)
    assert call(methods, session, "server.peers.subscribe")[0][1] == "peer.example"
    assert call(methods, session, "server.add_peer", {"hosts": {}}) is True
    assert peers.calls == [("subscribe", True), ("add", {"hosts": {}}, "10.1.2.3")]
    assert session.notifications == []
    assert session.cost >= 200           # add_peer is expensive, as in ElectrumX
