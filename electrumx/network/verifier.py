"""One check of one peer, start to finish, over one bounded connection.

    connect (TLS first, then TCP)
    server.version      it must speak a protocol version we speak
    server.features     our genesis hash; its own host and the port we used listed
    blockchain.headers.subscribe, blockchain.block.header
                        its height near ours, and its header at a height we both
                        have equal to ours (so it follows our chain)
    server.peers.subscribe   (when asked) the peers it knows, to check later
    server.add_peer     (when asked, and it does not list us yet) tell it about us

Any lie or breach raises PeerError; the connection is closed either way.
"""

from dataclasses import dataclass

from electrumx import SERVER_VERSION
from electrumx.network.client import connect_peer
from electrumx.network.peer import PeerError, peer_from_entry, peers_from_features
from electrumx.protocol.version import (PROTOCOL_MAX, PROTOCOL_MIN, UnsupportedVersion,
                                        negotiate_version, version_string)


@dataclass(frozen=True)
class CheckLimits:
    """The bounds of one check: times in seconds, sizes in bytes."""

    connect_timeout: float = 10.0
    request_timeout: float = 15.0
    proxy_connect_timeout: float = 60.0
    proxy_request_timeout: float = 60.0
    """Through Tor, circuits take a while to build and replies to come back."""
    max_line: int = 256_000
    max_total: int = 1_000_000
    height_slack: int = 5
    """How far a peer's height may be from ours (blocks propagate unevenly)."""
    split_slack: int = 10
    """The header compared is this far below the lower tip, so a short chain split or
    a reorg one of us has not seen yet does not count as another chain."""
    max_listed: int = 100
    """Most entries read from one peer's server.peers.subscribe (to find ourselves)."""


@dataclass
class CheckResult:
    """What a good peer told us: its features for its host, its address, peers it knows."""

    features: object      # a Peer carrying the peer's own claims
    ip_addr: str
    learned: list
    announced: bool


@dataclass(frozen=True)
class OurChain:
    """What a peer is checked against: our genesis hash and our index's headers."""

    genesis_hash: str
    height: object        # callable() -> our height
    header: object        # callable(height) -> raw header bytes
    default_ports: tuple = (None, None)


async def check_peer(reactor, peer, ours: OurChain, limits: CheckLimits, *,
                     allow_loopback=False, learn=False, announce=None,
                     is_self=lambda peer: False, bind_address=None,
                     proxy=None) -> CheckResult:
    """Check `peer` (a Peer); returns a CheckResult or raises PeerError.

    `announce` is our server.features dict to send with server.add_peer, or
    None; it is sent unless the peer's list (when `learn`) already has us,
    recognised by `is_self(peer)`.  `bind_address` is the local address to
    connect from (our listening address, so the peer sees the source we announce).
    Through `proxy` (a TorProxy: onion peers, or all with FORCE_PROXY) the peer's
    address is unknown and left None.
    """
    last_error = PeerError(f"{peer.host} has no ports")
    for protocol_name, port in peer.ports:
        try:
            client = await connect_peer(reactor, peer.host, port, protocol_name == "ssl",
                                        limits, bind_address, proxy)
        except PeerError as error:
            last_error = error
            continue
        try:
            result = await _converse(client, peer, protocol_name, port, ours, limits,
                                     allow_loopback, learn, announce, is_self)
            if proxy is not None:
                result.ip_addr = None
            return result
        finally:
            client.close()
    raise last_error


async def _converse(client, peer, protocol_name, port, ours, limits, allow_loopback,
                    learn, announce, is_self):
    ip_addr = getattr(client.transport.getPeer(), "host", None)
    reply = await client.request("server.version", [
        SERVER_VERSION, [version_string(PROTOCOL_MIN), version_string(PROTOCOL_MAX)]])
    if not (isinstance(reply, list) and len(reply) == 2 and all(isinstance(x, str)
                                                                for x in reply)):
        raise PeerError("bad server.version reply")
    try:
        negotiate_version(reply[1])
    except UnsupportedVersion:
        raise PeerError(f"negotiated an unsupported version {reply[1][:20]!r}") from None

    features = await client.request("server.features")
    if not isinstance(features, dict):
        raise PeerError("server.features is not a dict")
    if features.get("genesis_hash") != ours.genesis_hash:
        raise PeerError("wrong genesis hash")
    claimed = [p for p in peers_from_features(features, peer.source, allow_loopback)
               if p.host == peer.host and getattr(p, f"{protocol_name}_port") == port]
    if not claimed:
        raise PeerError(f"its features do not list {peer.host} with {protocol_name} port "
                        f"{port}")

    await _check_headers(client, ours, limits)

    learned, lists_us = [], False
    if learn:
        entries = await client.request("server.peers.subscribe")
        if not isinstance(entries, list):
            raise PeerError("server.peers.subscribe is not a list")
        for entry in entries[:limits.max_listed]:
            try:
                listed = peer_from_entry(entry, f"peer {peer.host}", allow_loopback,
                                         ours.default_ports)
            except PeerError:
                continue
            if is_self(listed):
                lists_us = True
            else:
                learned.append(listed)
    announced = False
    if announce is not None and not lists_us:
        announced = await client.request("server.add_peer", [announce]) is True
    return CheckResult(claimed[0], ip_addr, learned, announced)


async def _check_headers(client, ours, limits):
    """The peer's tip is near ours and its header at a height we both have is ours."""
    tip = await client.request("blockchain.headers.subscribe")
    if not isinstance(tip, dict) or isinstance(tip.get("height"), bool) \
            or not isinstance(tip.get("height"), int):
        raise PeerError("bad blockchain.headers.subscribe reply")
    our_height, their_height = ours.height(), tip["height"]
    if abs(our_height - their_height) > limits.height_slack:
        raise PeerError(f"its height {their_height} is far from ours ({our_height})")
    height = max(0, min(our_height, their_height) - limits.split_slack)
    theirs = await client.request("blockchain.block.header", [height])
    if theirs != ours.header(height).hex():
        raise PeerError(f"its header at height {height} is not ours (another chain)")
