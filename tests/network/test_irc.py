"""The IRC announcer against a twisted.words IRC server on 127.0.0.1.

The stock twisted.words server answers WHO with each member's nick as its
real name; the server here (`RealNameIRCUser`) reports the real name the
member sent with USER, as IRC servers do, and lets anybody sign on.
"""

import pytest_twisted
from twisted.cred import checkers, credentials, portal
from twisted.internet import defer, endpoints, reactor
from twisted.words import service as words
from twisted.words.protocols import irc
from zope.interface import implementer

from electrumx.coins import BitcoinRegtest
from electrumx.config.services import Service
from electrumx.network import irc as announcer_module
from electrumx.network.irc import IRCAnnouncer
from electrumx.network.manager import PeerManager
from tests.fixtures.regtest import wait_for
from tests.network.fakes import our_reader, start_fake, stop_fakes
from tests.network.test_hostile_peers import LIMITS, peer_settings


@implementer(checkers.ICredentialsChecker)
class Anybody:
    credentialInterfaces = (credentials.IUsernamePassword,)

    def requestAvatarId(self, creds):
        return defer.succeed(creds.username)


class RealNameIRCUser(words.IRCUser):
    def irc_NICK(self, prefix, params):
        if self.password is None:
            self.password = b"-"              # sign on without NickServ
        super().irc_NICK(prefix, params)

    def _channelWho(self, group):
        self.who(self.name, "#" + group.name,
                 [(m.name, self.hostname, self.realm.name, m.name, "H", 0,
                   getattr(m, "realname", None) or m.name) for m in group.iterusers()])


async def start_irc_server():
    realm = words.InMemoryWordsRealm("test.irc")
    realm.createGroupOnRequest = True
    factory = words.IRCFactory(realm, portal.Portal(realm, [Anybody()]))
    factory.protocol = RealNameIRCUser
    return await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)


class Bot(irc.IRCClient):
    """Another server in the channel, and our eyes on it."""

    def __init__(self, nickname, realname):
        self.nickname = nickname
        self.realname = realname
        self.who_replies = {}
        self.in_channel = defer.Deferred()

    def signedOn(self):
        self.join("#electrum")

    def joined(self, channel):
        self.in_channel.callback(None)

    def irc_RPL_WHOREPLY(self, prefix, params):
        self.who_replies[params[5]] = params[7].partition(" ")[2]


async def real_name_seen(bot, nick):
    """What WHO shows as `nick`'s real name, asking again until `nick` is in the channel."""
    for _ in range(100):
        bot.sendLine("WHO #electrum")
        try:
            await wait_for(lambda: nick in bot.who_replies, timeout=0.2)
        except AssertionError:
            continue
        return bot.who_replies[nick]
    raise AssertionError(f"{nick} never joined")


async def start_bot(port, nickname, realname):
    bot = Bot(nickname, realname)
    await endpoints.connectProtocol(
        endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port), bot)
    await bot.in_channel
    return bot


def irc_settings(irc_port, **overrides):
    return peer_settings(irc_host="127.0.0.1", irc_port=irc_port, irc_channel="#electrum",
                         irc_nick="me", coin=BitcoinRegtest, **overrides)


@pytest_twisted.ensureDeferred
async def test_announces_itself_and_collects_checked_peers(monkeypatch):
    monkeypatch.setattr(announcer_module.AnnouncerProtocol, "WHO_DELAY", 0.1)
    irc_port = await start_irc_server()
    fake = await start_fake()
    port = irc_port.getHost().port
    settings = irc_settings(port, report_services=[Service("tcp", "127.0.0.1", 50001)])
    manager = PeerManager(settings, our_reader(), reactor, limits=LIMITS)
    manager.startService()
    manager.start_discovery()
    announcer = IRCAnnouncer(settings, manager, reactor)
    announcer.startService()
    bots = []
    try:
        assert announcer.nickname == "ER_me"
        assert announcer.realname == "127.0.0.1 v1.7 t50001"
        # Servers that join after us are collected too (we list the channel again).
        bots.append(await start_bot(port, "ER_other", f"127.0.0.1 v1.4 t{fake.port}"))
        bots.append(await start_bot(port, "somebody", "127.0.0.1 v1.4 t9"))  # no prefix
        bots.append(await start_bot(port, "ER_junk", "not a peer at all"))
        bots.append(await start_bot(port, "ER_private", "10.0.0.1 t50001"))
        await wait_for(lambda: manager.on_peers_subscribe(False))
        assert manager.on_peers_subscribe(False) == [["127.0.0.1", "127.0.0.1",
                                                      ["v1.4", f"t{fake.port}"]]]
        assert [p.key for p in announcer.collected] == [("127.0.0.1", fake.port, None)]
        assert manager.peers[("127.0.0.1", fake.port, None)].source == "irc"
        # What the other servers see of us.
        assert await real_name_seen(bots[0], "ER_me") == "127.0.0.1 v1.7 t50001"
    finally:
        for bot in bots:
            bot.transport.loseConnection()
        await announcer.stopService()
        manager.stopService()
        await irc_port.stopListening()
        await stop_fakes([fake])


@pytest_twisted.ensureDeferred
async def test_without_discovery_it_only_announces(monkeypatch):
    monkeypatch.setattr(announcer_module.AnnouncerProtocol, "WHO_DELAY", 0.1)
    irc_port = await start_irc_server()
    port = irc_port.getHost().port
    settings = irc_settings(port, peer_discovery="off", peer_announce=True,
                            report_services=[Service("ssl", "127.0.0.1", 50002)])
    manager = PeerManager(settings, our_reader(), reactor)
    announcer = IRCAnnouncer(settings, manager, reactor)
    announcer.startService()
    try:
        bot = await start_bot(port, "ER_other", "127.0.0.1 v1.4 t1234")
        assert await real_name_seen(bot, "ER_me") == "127.0.0.1 v1.7 s50002"
        assert announcer.collected == [] and manager.peers == {}
        bot.transport.loseConnection()
    finally:
        await announcer.stopService()
        await irc_port.stopListening()


def test_no_real_name_without_an_announceable_host():
    settings = irc_settings(1, peer_allow_loopback=False)
    assert IRCAnnouncer(settings, PeerManager(settings, our_reader(), reactor),
                        reactor).realname is None
    settings = irc_settings(1, peer_announce=False)
    assert IRCAnnouncer(settings, PeerManager(settings, our_reader(), reactor),
                        reactor).realname is None
