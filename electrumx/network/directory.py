"""The peer directory of a server that does not discover peers (PEER_DISCOVERY=off).

The protocol layer always has a directory to ask; with discovery off it is
this one, which knows no peers, takes none and sees no client as a Tor one
(without discovery there is no Tor proxy to recognise).
"""

from twisted.internet import defer
from zope.interface import implementer

from electrumx.interfaces import IPeerDirectory


@implementer(IPeerDirectory)
class NoPeers:
    """A directory that knows no peers."""

    def on_peers_subscribe(self, is_tor: bool = False) -> list:
        return []

    def on_add_peer(self, features, source_addr: str):
        """Every announced peer is refused (a Deferred of False, as PeerManager answers)."""
        return defer.succeed(False)

    def is_tor_client(self, address: str) -> bool:
        return False
