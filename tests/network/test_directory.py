"""The peer directories the protocol layer asks: the PeerManager, and NoPeers when
PEER_DISCOVERY=off."""

from twisted.internet import reactor
from zope.interface.verify import verifyObject

from electrumx.interfaces import IPeerDirectory
from electrumx.network.directory import NoPeers
from electrumx.network.manager import PeerManager
from tests.network.fakes import our_reader
from tests.network.test_hostile_peers import peer_settings
from tests.protocol.test_methods_support import resolve


def test_the_peer_manager_is_a_peer_directory():
    assert verifyObject(IPeerDirectory, PeerManager(peer_settings(), our_reader(), reactor))


def test_without_discovery_the_directory_knows_no_peers():
    directory = NoPeers()
    assert verifyObject(IPeerDirectory, directory)
    assert directory.on_peers_subscribe() == directory.on_peers_subscribe(is_tor=True) == []
    features = {"hosts": {"127.0.0.1": {"tcp_port": 50001}}}
    assert resolve(directory.on_add_peer(features, "127.0.0.1")) is False
    assert directory.is_tor_client("127.0.0.1") is False
