"""The IRC announcer: sit in a channel under a name that says where we serve.

Early Electrum servers found each other this way: each joined one channel
with a nick starting with the coin's prefix ("E_" for Bitcoin) and a real
name such as "electrum.example.com v1.6 s50002 t50001".  We do the same
(IRC=yes), and with PEER_DISCOVERY=on we read the other servers' real names
from `WHO` replies into the peer manager, which checks them like any peer.
"""

import os

from twisted.application import service
from twisted.application.internet import ClientService
from twisted.internet import endpoints, protocol
from twisted.words.protocols import irc

from electrumx.logs import Logger
from electrumx.network.manager import announce_features
from electrumx.network.peer import PeerError, peer_from_entry

MAX_PEERS_PER_WHO = 100
"""Most peers taken from one WHO listing (a channel could be stuffed with fakes)."""


class AnnouncerProtocol(irc.IRCClient):
    """Joins the channel, asks who is there, and hands prefixed real names to `on_real_name`."""

    log = Logger()
    WHO_DELAY = 10.0
    """Seconds after a server joins before the channel is listed again (joins coalesce)."""

    def __init__(self, nickname, realname, channel, prefix, on_real_name, clock):
        self.nickname = nickname
        self.realname = realname
        self.username = "electrumx"
        self.channel = channel
        self.prefix = prefix
        self.on_real_name = on_real_name
        self.clock = clock
        self._who_call = None
        self._who_count = 0

    def signedOn(self):
        self.log.info("IRC: signed on as {nick}; joining {channel}", nick=self.nickname,
                      channel=self.channel)
        self.join(self.channel)

    def joined(self, channel):
        self.who()

    def userJoined(self, user, channel):
        if user.startswith(self.prefix) and (self._who_call is None
                                             or not self._who_call.active()):
            self._who_call = self.clock.callLater(self.WHO_DELAY, self.who)

    def who(self):
        self._who_count = 0
        self.sendLine(f"WHO {self.channel}")

    def irc_RPL_WHOREPLY(self, prefix, params):
        # params: me, channel, user, host, server, nick, flags, "hopcount real name"
        if len(params) < 8 or self._who_count >= MAX_PEERS_PER_WHO:
            return
        nick, hops_and_name = params[5], params[7]
        if nick == self.nickname or not nick.startswith(self.prefix):
            return
        self._who_count += 1
        _hops, _, real_name = hops_and_name.partition(" ")
        self.on_real_name(nick, real_name)

    def alterCollidedNick(self, nickname):
        return nickname[:len(self.prefix) + 6] + os.urandom(2).hex()

    def connectionLost(self, reason=None):
        if self._who_call is not None and self._who_call.active():
            self._who_call.cancel()
        super().connectionLost(reason)


class AnnouncerFactory(protocol.Factory):
    noisy = False

    def __init__(self, announcer):
        self.announcer = announcer

    def buildProtocol(self, addr):
        a = self.announcer
        client = AnnouncerProtocol(a.nickname, a.realname, a.channel, a.prefix,
                                   a.on_real_name, a.reactor)
        client.factory = self
        return client


class IRCAnnouncer(service.MultiService):
    """IRC=yes: stays in IRC_CHANNEL on IRC_HOST:IRC_PORT, reconnecting with backoff.

    `peers` is the PeerManager, which takes the peers collected from the
    channel when discovery is on; None when PEER_DISCOVERY=off.
    """

    log = Logger()
    name = "irc"

    def __init__(self, settings, peers, reactor):
        super().__init__()
        self.settings = settings
        self.peers = peers
        self.reactor = reactor
        self.prefix = settings.coin.IRC_PREFIX
        self.nickname = self.prefix + (settings.irc_nick or os.urandom(5).hex())
        self.channel = settings.irc_channel
        self.realname = irc_real_name(settings)
        self.collected = []
        endpoint = endpoints.HostnameEndpoint(reactor, settings.irc_host, settings.irc_port)
        ClientService(endpoint, AnnouncerFactory(self), clock=reactor).setServiceParent(self)

    def on_real_name(self, nick, real_name):
        """A prefixed nick in the channel: its real name is a peer, checked before trusted."""
        if self.peers is None or self.peers.mode != "on":
            return
        try:
            peer = peer_from_entry(real_name, "irc", self.peers.allow_loopback,
                                   self.peers.ours.default_ports)
        except PeerError as error:
            self.log.debug("IRC: {nick}'s real name is no peer: {error}", nick=nick,
                           error=error)
            return
        if self.peers.add(peer):
            self.collected.append(peer)


def irc_real_name(settings):
    """"host v1.6 s50002 t50001" for the first host we announce, or None if none."""
    features = announce_features(settings)
    if features is None:
        return None
    host, ports = next(iter(features["hosts"].items()))
    parts = [host, "v" + features["protocol_max"]]
    if ports.get("ssl_port"):
        parts.append(f"s{ports['ssl_port']}")
    if ports.get("tcp_port"):
        parts.append(f"t{ports['tcp_port']}")
    return " ".join(parts)
