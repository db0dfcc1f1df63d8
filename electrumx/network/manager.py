"""The PeerManager service: which servers we know, which we trust, and telling them of us.

Peers come from the coin's seeds (or PEERS), from `server.add_peer` calls of
other servers, from the lists of peers we checked, and from IRC.  None is
listed to clients before a check (see `verifier.py`) passed; every peer is
checked again every PEER_CHECK_SECS.  One that lies or breaks a bound is bad
(not listed, not re-checked) for BAD_SECS; one we cannot reach is retried
after PEER_CHECK_SECS, doubling up to BAD_SECS; one not good for STALE_SECS
is forgotten.

PEER_DISCOVERY=off does nothing and lists nobody; `self` only checks our own
REPORT_SERVICES and lists those; `on` does everything.  Hostile peers are
bounded everywhere: add_peer calls per source, peers known, checks at once,
and each check's connection (see `client.py`).
"""

import ipaddress
import random

from twisted.application import service
from twisted.internet import defer
from twisted.internet.interfaces import IResolutionReceiver
from zope.interface import implementer

from electrumx.interfaces import IPeerDirectory
from electrumx.logs import Logger
from electrumx.network.blacklist import BlacklistError, fetch_blacklist, is_blacklisted
from electrumx.network.buckets import pick_per_bucket
from electrumx.network.peer import (PeerError, PeerUnreachable, peer_from_entry,
                                    peers_from_features)
from electrumx.network.tor import detect_proxy
from electrumx.network.verifier import CheckLimits, OurChain, check_peer
from electrumx.config.services import is_loopback, is_private
from electrumx.protocol.methods.server import server_features
from electrumx.timers import timer_service


class RateLimiter:
    """A token bucket per source: `burst` at once, then one every `interval` seconds."""

    MAX_SOURCES = 10_000

    def __init__(self, clock, burst: int, interval: float):
        self.clock = clock
        self.burst = burst
        self.interval = interval
        self._buckets = {}

    def allow(self, source) -> bool:
        now = self.clock.seconds()
        tokens, since = self._buckets.get(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - since) / self.interval)
        if len(self._buckets) >= self.MAX_SOURCES and source not in self._buckets:
            self._buckets = {s: v for s, v in self._buckets.items()
                             if v[0] + (now - v[1]) / self.interval < self.burst}
            if len(self._buckets) >= self.MAX_SOURCES:
                return False
        if tokens < 1:
            self._buckets[source] = (tokens, now)
            return False
        self._buckets[source] = (tokens - 1, now)
        return True


def _is_address(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def registered_domain(host: str) -> str:
    """The last two labels of a name ("example.com" of "a.b.example.com"); an address as is."""
    return host if _is_address(host) else ".".join(host.split(".")[-2:])


def plain_address(address: str) -> str:
    """An IPv4-mapped IPv6 address as plain IPv4; anything else unchanged."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


async def resolve_host(reactor, host: str, timeout: float = 10.0) -> set:
    """The addresses `host` resolves to (itself when it is an address), by the reactor's
    `nameResolver`; none if it does not resolve, or not within `timeout` seconds."""
    try:
        ipaddress.ip_address(host)
        return {host}
    except ValueError:
        pass
    addresses = _Addresses()
    reactor.nameResolver.resolveHostName(addresses, host)
    addresses.complete.addTimeout(timeout, reactor)
    try:
        return await addresses.complete
    except defer.TimeoutError:
        return set()


@implementer(IResolutionReceiver)
class _Addresses:
    """Collects the addresses of one name resolution; `complete` fires with them."""

    def __init__(self):
        self.found = set()
        self.complete = defer.Deferred()

    def resolutionBegan(self, resolution):
        pass

    def addressResolved(self, address):
        self.found.add(plain_address(address.host))

    def resolutionComplete(self):
        if not self.complete.called:        # not already given up by the timeout
            self.complete.callback(self.found)


def announce_features(settings):
    """Our server.features for server.add_peer, without hosts peers cannot reach.

    None when we do not announce (PEER_ANNOUNCE=no, or no public host).
    Loopback hosts count as reachable only with PEER_ALLOW_LOOPBACK.
    """
    if not settings.peer_announce:
        return None
    allow_loopback = getattr(settings, "peer_allow_loopback", False)
    features = server_features(settings)
    features["hosts"] = {host: ports for host, ports in features["hosts"].items()
                         if not is_private(host) or (allow_loopback and is_loopback(host))}
    features["services"] = [s for s in features["services"]
                            if any(f"//{h}:" in s or f"//[{h}]:" in s
                                   for h in features["hosts"])]
    return features if features["hosts"] else None


@implementer(IPeerDirectory)
class PeerManager(service.Service):
    """Knows, checks, lists and announces peers: the peer directory of ElectrumMethods."""

    log = Logger()
    name = "peers"
    WAKEUP_SECS = 60.0
    STALE_SECS = 24 * 3600.0
    BAD_SECS = 3600.0
    MAX_PEERS = 1000
    MAX_PER_HOST = 3
    LEARN_PER_CHECK = 2
    """New peers taken from one peer's list per check (so no peer can make us scan)."""
    MAX_CHECKS = 8
    MAX_RESOLVING = 20
    ADD_PEER_BURST = 3
    ADD_PEER_INTERVAL = 60.0
    BLACKLIST_SECS = 600.0
    PROXY_DETECT_SECS = 900.0
    ONION_ADD_INTERVAL = 600.0
    """One new onion peer by add_peer per this many seconds (their source cannot be checked)."""

    def __init__(self, settings, reader, reactor, *, limits=None, rng=None, resolve=None):
        self.settings = settings
        self.reactor = reactor
        self.mode = settings.peer_discovery
        self.allow_loopback = getattr(settings, "peer_allow_loopback", False)
        self.check_secs = float(getattr(settings, "peer_check_secs", 600))
        self.limits = limits or CheckLimits()
        self.rng = rng or random.SystemRandom()
        self.resolve = resolve or (lambda host: defer.ensureDeferred(resolve_host(reactor,
                                                                                  host)))
        coin = settings.coin
        self.ours = OurChain(coin.GENESIS_HASH, lambda: reader.height, reader.header,
                             (coin.TCP_PORT, coin.SSL_PORT))
        self.peers = {}
        self.checking = set()
        self.blacklist = frozenset()
        self.add_peer_limiter = RateLimiter(reactor, self.ADD_PEER_BURST,
                                            self.ADD_PEER_INTERVAL)
        self.onion_limiter = RateLimiter(reactor, 1, self.ONION_ADD_INTERVAL)
        self.force_proxy = getattr(settings, "force_proxy", False)
        self.proxy = None
        self.bind_address = self._bind_address()
        self._resolving = 0
        self._loops = []
        self._kick_call = None
        self.discovering = False

    def _bind_address(self):
        """The public address we listen on, to check peers from (so they see it), or None.

        A private or loopback listening address (behind a proxy or NAT) cannot
        reach peers, so outgoing connections then use the system's choice.
        """
        for svc in getattr(self.settings, "services", None) or ():
            host = svc.host
            if svc.protocol != "rpc" and _is_address(host) and (
                    not is_private(host) or (self.allow_loopback and is_loopback(host))):
                return host
        return None

    # ---- lifecycle -------------------------------------------------------

    def start_discovery(self):
        """Start checking peers; the controller calls this once our listeners are up."""
        if self.mode == "off" or not self.running or self.discovering:
            return
        self.discovering = True
        for peer in (self.seed_peers() if self.mode == "on" else self.my_peers()):
            self.add(peer)
        self.log.info("peer discovery {mode}: {count} peers to check", mode=self.mode,
                      count=len(self.peers))
        self._start_loop(self.maintain, min(self.WAKEUP_SECS, max(0.1, self.check_secs / 2)))
        if self.mode == "on":
            self._start_loop(lambda: defer.ensureDeferred(self.find_proxy()),
                             self.PROXY_DETECT_SECS)
        if self.settings.blacklist_url and self.mode == "on":
            self._start_loop(lambda: defer.ensureDeferred(self.refresh_blacklist()),
                             self.BLACKLIST_SECS)

    def _start_loop(self, function, interval):
        loop = timer_service(self.reactor, interval, function)
        loop.startService()
        self._loops.append(loop)

    def stopService(self):
        for loop in self._loops:
            loop.stopService()      # not waited for: a check under way may take a while
        self._loops = []
        if self._kick_call is not None and self._kick_call.active():
            self._kick_call.cancel()
        self.discovering = False
        return super().stopService()

    # ---- who is who ------------------------------------------------------

    async def find_proxy(self):
        """Look for the Tor proxy until one answers (TOR_PROXY_HOST, TOR_PROXY_PORT)."""
        if self.proxy is not None:
            return
        host = getattr(self.settings, "tor_proxy_host", "localhost")
        self.proxy = await detect_proxy(self.reactor, host,
                                        getattr(self.settings, "tor_proxy_port", None))
        if self.proxy is not None:
            self.log.info("Tor proxy found at {host}:{port}", host=host, port=self.proxy.port)
            self.kick()
        else:
            self.log.info("no Tor proxy at {host}; onion peers are not checked", host=host)

    def needs_proxy(self, peer) -> bool:
        return peer.is_onion or self.force_proxy

    def is_tor_client(self, address: str) -> bool:
        """Whether a client connected from our Tor proxy (so came in over Tor)."""
        return self.proxy is not None and plain_address(address) in self.proxy.addresses()

    def seed_peers(self) -> list:
        """The PEERS setting if given, else the coin's seeds."""
        text = getattr(self.settings, "peers", "") or ""
        entries = [e for e in text.split(",") if e.strip()] or list(self.settings.coin.PEERS)
        seeds = []
        for entry in entries:
            try:
                peer = peer_from_entry(entry, "seed", self.allow_loopback, self.ours.default_ports)
            except PeerError as error:
                self.log.warn("ignoring seed peer {entry!r}: {error}", entry=entry, error=error)
                continue
            peer.is_seed = True
            seeds.append(peer)
        return seeds

    def my_peers(self) -> list:
        """Our REPORT_SERVICES as peers (what PEER_DISCOVERY=self checks)."""
        try:
            peers = peers_from_features(server_features(self.settings), "self",
                                        self.allow_loopback)
        except PeerError:
            return []
        for peer in peers:
            peer.is_seed = True
        return peers

    def is_self(self, peer) -> bool:
        return any(reported.host.lower() == peer.host
                   and reported.port in (peer.tcp_port, peer.ssl_port)
                   for reported in self.settings.report_services)

    def announce_features(self):
        return announce_features(self.settings)

    def add(self, peer) -> bool:
        """Remember `peer` for checking; False if it is us, known, blacklisted or no room."""
        if self.mode == "on" and self.is_self(peer):
            return False
        if peer.is_onion and self.proxy is None and not peer.is_seed:
            return False                # unreachable until a Tor proxy is found
        if peer.key in self.peers or self.blacklisted(peer):
            return False
        if sum(p.host == peer.host for p in self.peers.values()) >= self.MAX_PER_HOST:
            return False
        if len(self.peers) >= self.MAX_PEERS:
            self.forget_stale()
            if len(self.peers) >= self.MAX_PEERS:
                return False
        now = self.reactor.seconds()
        peer.added = now
        peer.next_check = now
        self.peers[peer.key] = peer
        self.kick()
        return True

    def forget_stale(self):
        cutoff = self.reactor.seconds() - self.STALE_SECS
        for key, peer in list(self.peers.items()):
            if not peer.is_seed and key not in self.checking \
                    and max(peer.last_good, peer.added) < cutoff:
                self.log.info("forgetting peer {name}", name=peer.real_name())
                del self.peers[key]

    # ---- checking --------------------------------------------------------

    def kick(self):
        """Run `maintain` soon (new peers, or a check slot freed)."""
        if self.discovering and (self._kick_call is None or not self._kick_call.active()):
            self._kick_call = self.reactor.callLater(0, self.maintain)

    def maintain(self):
        """Forget stale peers and start the checks that are due, a few at a time."""
        self.forget_stale()
        now = self.reactor.seconds()
        due = sorted((p for p in self.peers.values()
                      if p.key not in self.checking and p.next_check <= now
                      and not self.blacklisted(p)
                      and (self.proxy is not None or not self.needs_proxy(p))),
                     key=lambda p: p.next_check)
        for peer in due[:max(0, self.MAX_CHECKS - len(self.checking))]:
            self.check(peer)

    def check(self, peer):
        """Check one peer now; a Deferred firing with the peer once its record is updated."""
        self.checking.add(peer.key)
        peer.last_try = self.reactor.seconds()
        d = defer.ensureDeferred(check_peer(
            self.reactor, peer, self.ours, self.limits, allow_loopback=self.allow_loopback,
            learn=self.mode == "on",
            announce=self.announce_features() if self.mode == "on" else None,
            is_self=self.is_self, bind_address=self.bind_address,
            proxy=self.proxy if self.needs_proxy(peer) else None))
        d.addCallbacks(lambda result: self._good(peer, result),
                       lambda failure: self._bad(peer, failure))
        d.addBoth(lambda _: self._checked(peer))
        return d

    def _good(self, peer, result):
        now = self.reactor.seconds()
        claims = result.features
        peer.protocol_max = claims.protocol_max
        peer.server_version = claims.server_version
        peer.pruning = claims.pruning
        peer.ip_addr = plain_address(result.ip_addr) if result.ip_addr else None
        first = not peer.last_good
        peer.last_good = now
        peer.bad_reason = None
        peer.failures = 0
        peer.next_check = now + self.check_secs
        if first:
            self.log.info("peer {name} verified ({source})", name=peer.real_name(),
                          source=peer.source)
        new = [p for p in result.learned if p.key not in self.peers]
        for learned in self.rng.sample(new, min(len(new), self.LEARN_PER_CHECK)):
            self.add(learned)

    def _bad(self, peer, failure):
        if failure.check(PeerError):
            reason = str(failure.value)
        else:
            self.log.failure("checking peer {host}", failure, host=peer.host)
            reason = "internal error"
        now = self.reactor.seconds()
        peer.bad_reason = reason
        peer.failures += 1
        if failure.check(PeerUnreachable):
            wait = min(self.BAD_SECS, self.check_secs * 2 ** (peer.failures - 1))
        else:
            wait = self.BAD_SECS
        peer.next_check = now + wait
        self.log.info("peer {name} is bad for now: {reason}", name=peer.real_name(),
                      reason=reason)

    def _checked(self, peer):
        self.checking.discard(peer.key)
        self.kick()
        return peer

    # ---- what sessions ask -----------------------------------------------

    def good_peers(self) -> list:
        now = self.reactor.seconds()
        return [p for p in self.peers.values()
                if p.last_good and not p.is_bad(now) and now - p.last_good < self.STALE_SECS
                and not self.blacklisted(p)]

    def on_peers_subscribe(self, is_tor: bool = False) -> list:
        """Verified peers in server.peers.subscribe shape, a few per network bucket.

        Onion peers are not bucketed: up to 50 go to clients that came over Tor,
        and to others up to a quarter of the clearnet peers listed (at least 10).
        """
        if self.mode == "off":
            return []
        good = self.good_peers()
        onion = [p for p in good if p.is_onion]
        chosen = pick_per_bucket([p for p in good if not p.is_onion], self.rng)
        most_onion = 50 if is_tor else max(10, len(chosen) // 4)
        chosen += self.rng.sample(onion, min(len(onion), most_onion))
        return [p.subscribe_entry() for p in chosen]

    def on_add_peer(self, features, source_addr: str):
        """server.add_peer: a Deferred of whether the peer will be checked.

        Refused: discovery not `on`, a source over its rate, malformed
        features, a host that does not resolve to the caller's address, and a
        peer we know as bad.
        """
        return defer.ensureDeferred(self._add_peer(features, plain_address(source_addr)))

    async def _add_peer(self, features, source):
        if self.mode != "on" or not self.discovering:
            return False
        try:
            peers = peers_from_features(features, "add_peer", self.allow_loopback)
        except PeerError as error:
            self.log.info("add_peer from {source} refused: {error}", source=source,
                          error=error)
            return False
        if not peers:
            return False
        peer = peers[0]
        known = self.peers.get(peer.key)
        if known is not None:          # a reminder costs a dict lookup, not a check
            return not known.is_bad(self.reactor.seconds())
        # Limited per caller and per domain claimed, so neither many names from one
        # address nor many addresses for one domain make us check much.
        if peer.is_onion:
            # Its source is our Tor proxy, so no check of who is asking is possible.
            if self.proxy is None or not self.onion_limiter.allow("onion"):
                return False
            peer.source = "add_peer (onion)"
            return self.add(peer)
        if not (self.add_peer_limiter.allow(source)
                and self.add_peer_limiter.allow("domain " + registered_domain(peer.host))):
            self.log.debug("add_peer from {source}: over the rate limit", source=source)
            return False
        if self._resolving >= self.MAX_RESOLVING:
            return False
        self._resolving += 1
        try:
            addresses = await self.resolve(peer.host)
        finally:
            self._resolving -= 1
        if source not in addresses:
            self.log.info("add_peer from {source} refused: {host} does not resolve to it",
                          source=source, host=peer.host)
            return False
        peer.source = f"add_peer {source}"
        return self.add(peer)

    # ---- the admin's view ------------------------------------------------

    def status(self, peer) -> str:
        now = self.reactor.seconds()
        if peer.is_bad(now):
            return "bad"
        if not peer.last_good:
            return "never"
        return "good" if now - peer.last_good < self.STALE_SECS else "stale"

    def admin_rows(self) -> list:
        """One row per known peer, for the admin RPC's `peers`."""
        now = self.reactor.seconds()

        def ago(when):
            return round(now - when) if when else None
        return [{"host": p.host, "tcp_port": p.tcp_port, "ssl_port": p.ssl_port,
                 "ip_addr": p.ip_addr, "status": self.status(p), "source": p.source,
                 "server_version": p.server_version, "protocol_max": p.protocol_max,
                 "last_good_secs_ago": ago(p.last_good), "last_try_secs_ago": ago(p.last_try),
                 "failures": p.failures, "reason": p.bad_reason}
                for p in sorted(self.peers.values(), key=lambda p: p.key)]

    def add_from_admin(self, real_name: str) -> dict:
        """The admin's `add_peer "host t50001 s50002"`: checked soon, even if known.

        Raises ValueError for a malformed real name.
        """
        try:
            peer = peer_from_entry(real_name, "admin", self.allow_loopback,
                                   self.ours.default_ports)
        except PeerError as error:
            raise ValueError(f"bad peer {real_name!r}: {error}") from None
        known = self.peers.get(peer.key)
        if known is not None:
            known.next_check = self.reactor.seconds()
            self.kick()
            return {"peer": known.real_name(), "added": False, "checking": True}
        added = self.add(peer)
        return {"peer": peer.real_name(), "added": added, "checking": added}

    # ---- blacklist -------------------------------------------------------

    def blacklisted(self, peer) -> bool:
        return is_blacklisted(peer.host, self.blacklist) or (
            peer.ip_addr is not None and peer.ip_addr in self.blacklist)

    async def refresh_blacklist(self):
        try:
            self.blacklist = await fetch_blacklist(self.reactor, self.settings.blacklist_url)
        except BlacklistError as error:
            self.log.warn("cannot read the peer blacklist: {error}", error=error)
