"""Script, outpoint and header subscriptions, and the notifications they earn.

The registry is the one place that knows who is subscribed to what:

- per script (hashX): its subscribers, so a chain event touching N scripts
  costs N lookups and a status computation per subscribed one, however many
  sessions share it;
- per outpoint (protocol 1.7): its subscribers, filed under the script it pays
  (`outpoint_subs`), so the same event costs N more lookups and a status
  computation per outpoint filed under a touched script;
- per session: what it holds, each with the status it was last sent (to tell
  a change, and to release them on unsubscribe or disconnect), and whether it
  follows headers.

Every subscriber of a script or outpoint has been sent the same status: a new
subscriber gets the freshly computed status, and if that differs from the one
the others hold, they are told too.  So the sessions holding the same name and
status share one bytes object, which keeps memory per subscription small (see
`bytes_per_subscription` in the tests' measurement).

A session names a script by its script hash (protocols 1.4 to 1.6) or by the
script itself (1.7's `blockchain.scriptpubkey.subscribe`), and is notified
under the name it used: it keeps the script hash's unindexed tail, or the
script.  Scripts may be 10,000 bytes long, so a script subscription counts
toward the limits (MAX_SUBS, per session, per group) once per
SCRIPT_BYTES_PER_SUB bytes of script kept: what the limits bound is memory,
about the same per count whatever the scripts (see the tests' measurement).

The registry listens to its reader (an IIndexListener registered with the
IChainReader it reads), not to the indexer: the reader tells it of a change
only after dropping the cached histories of the touched scripts, so a status
recomputed here is never a stale one.
"""

from zope.interface import implementer

from electrumx.logs import Logger

from electrumx.chain.hashes import HASHX_LEN, hashX_from_scripthash
from electrumx.chain.status import status_text
from electrumx.interfaces import IIndexListener
from electrumx.protocol import costs, one_or_many
from electrumx.protocol.errors import BAD_REQUEST, HISTORY_TOO_LONG, RPCError
from electrumx.protocol.outpoint_subs import OutpointSubscriptions, outpoint_key

STATUS_KEY_LEN = 8
"""Bytes of a status digest kept to notice a change (a 2**-64 chance to miss one)."""
NO_STATUS = bytes(STATUS_KEY_LEN)
"""The status key of a script without history (a digest starting so is as unlikely)."""
SCRIPT_BYTES_PER_SUB = 128
"""A script subscription counts once toward the limits per this many bytes of script
kept, started (standard scripts, up to 71 bytes, count once; 10,000 bytes count 79)."""

SCRIPTHASH_METHOD = "blockchain.scripthash.subscribe"
SCRIPTPUBKEY_METHOD = "blockchain.scriptpubkey.subscribe"
HEADERS_METHOD = "blockchain.headers.subscribe"


# ---- history and status: pure functions over the reader ----------------------

def history_limit(max_send: int) -> int:
    """Most history entries a reply may hold: each is about 99 bytes of JSON."""
    return (max_send - 100) // 99


def script_status(reader, hashX: bytes, limit: int):
    """(status digest or None, whether the mempool had a part in it, history length).

    The same digest as `chain.status.status_hash` of the whole history, from the reader's
    hasher of the confirmed part (kept for busy scripts) and the mempool part.
    """
    count, hasher = reader.confirmed_status_hasher(hashX, limit)
    if count >= limit:
        raise RPCError(HISTORY_TOO_LONG, "history too large")
    mempool = reader.mempool_history(hashX)
    if mempool:
        hasher = hasher.copy()
        hasher.update(status_text([(txid, height) for txid, height, _fee in mempool]))
    digest = hasher.digest() if count or mempool else None
    return digest, bool(mempool), count + len(mempool)


def header_result(reader, height=None):
    """The {hex, height} of headers.subscribe for `height` (default: the tip)."""
    height = reader.height if height is None else min(height, reader.height)
    return {"hex": reader.header(height).hex(), "height": height}


def _hex(digest):
    return None if digest is None else digest.hex()


# ---- what a session keeps per script ---------------------------------------------

BY_HASH, BY_SCRIPT = 0, 1
"""How a session named a script: by its script hash, or by the script itself."""
_KEY_AT = 1
_NAME_AT = _KEY_AT + STATUS_KEY_LEN


def _held(naming: int, name: bytes, digest) -> bytes:
    """What a session keeps per script, one bytes object: how it named the script, the
    status key last sent, then the name (the script hash's tail past the hashX, or the
    script)."""
    key = NO_STATUS if digest is None else digest[:STATUS_KEY_LEN]
    return bytes((naming,)) + key + name


def _weight(naming: int, name_len: int) -> int:
    """How many times a script subscription counts toward the limits: once, or for a
    script named by itself once per SCRIPT_BYTES_PER_SUB bytes kept, started."""
    return 1 if naming == BY_HASH else -(-name_len // SCRIPT_BYTES_PER_SUB)


def _weight_of(held: bytes) -> int:
    return _weight(held[0], len(held) - _NAME_AT)


def _notification(hashX: bytes, held: bytes, status):
    """(method, params) telling a session a script's new status, under its own name."""
    name = held[_NAME_AT:]
    if held[0] == BY_HASH:
        return SCRIPTHASH_METHOD, [(hashX + name)[::-1].hex(), status]
    return SCRIPTPUBKEY_METHOD, [name.hex(), status]


class _SessionSubs:
    """A session's side of the registry (kept in `session.subscription_state`)."""

    __slots__ = ("hashXs", "outpoints", "headers", "group", "count")

    def __init__(self, group):
        self.hashXs = {}
        """hashX -> what the session keeps of the script (`_held`)."""
        self.outpoints = {}
        """outpoint key -> the hashX it is filed under, then the status key last sent
        (see `outpoint_subs`)."""
        self.headers = False
        self.group = group
        self.count = 0
        """What its subscriptions count toward the limits."""


# ---- the registry ------------------------------------------------------------


@implementer(IIndexListener)
class SubscriptionRegistry:
    """Who follows which scripts, outpoints and headers; sends their notifications.

    `reader` is the IChainReader it reads and is told of index changes by.
    `max_subs` bounds all script and outpoint subscriptions, `max_session_subs`
    those of one session, `max_group_subs` those of one session group
    (`session.group_key`: its subnet, see `session_groups`); long scripts count
    more than once (SCRIPT_BYTES_PER_SUB).  A limit of None or 0 means no limit.
    """

    log = Logger()

    def __init__(self, reader, *, max_send: int, max_subs=None, max_session_subs=None,
                 max_group_subs=None):
        self.reader = reader
        self.history_limit = history_limit(max_send)
        self.max_subs = max_subs
        self.max_session_subs = max_session_subs
        self.max_group_subs = max_group_subs
        self._scripts: dict[bytes, object] = {}   # hashX -> its subscriber, or a set of them
        self._in_mempool: set[bytes] = set()  # hashXs whose last status involved the mempool
        self._outpoints = OutpointSubscriptions(reader, self._send)
        self._header_sessions: set = set()
        self._group_counts: dict[object, int] = {}
        self.subscription_count = 0
        """What all subscriptions count toward MAX_SUBS."""
        self._notified = None        # the {hex, height} last announced
        reader.add_listener(self)

    @classmethod
    def from_settings(cls, reader, settings):
        """A registry with the limits of the server's settings."""
        return cls(reader, max_send=settings.max_send, max_subs=settings.max_subs,
                   max_session_subs=settings.max_session_subs,
                   max_group_subs=settings.max_group_subs)

    # ---- sessions ------------------------------------------------------------

    def _state(self, session) -> _SessionSubs:
        state = session.subscription_state
        if state is None:
            state = session.subscription_state = _SessionSubs(session.group_key)
        return state

    def session_closed(self, session):
        """Release everything the session held; call on disconnect."""
        state = session.subscription_state
        if state is None:
            return
        for hashX in list(state.hashXs):
            self._release(session, state, hashX)
        for outpoint in list(state.outpoints):
            self._release_outpoint(session, state, outpoint)
        self._header_sessions.discard(session)
        session.subscription_state = None

    # ---- limits ----------------------------------------------------------------

    def _check_limits(self, state, growth: int):
        """Raise RPCError(BAD_REQUEST) unless the session may count `growth` more."""
        limits = ((self.max_subs, self.subscription_count, "server"),
                  (self.max_session_subs, state.count, "per-session"),
                  (self.max_group_subs, self._group_counts.get(state.group, 0),
                   "per-group"))
        for limit, count, what in limits:
            if limit and count + growth > limit:
                raise RPCError(BAD_REQUEST, f"{what} subscription limit {limit:,d} reached")

    def _count(self, state, change: int):
        """Count `change` more (or fewer) toward the session's, group's and server's limits."""
        if not change:
            return
        state.count += change
        self.subscription_count += change
        count = self._group_counts.get(state.group, 0) + change
        if count:
            self._group_counts[state.group] = count
        else:
            del self._group_counts[state.group]

    # ---- headers ---------------------------------------------------------------

    def subscribe_headers(self, session):
        """Follow new tips; returns the current tip's {hex, height}."""
        self._state(session).headers = True
        self._header_sessions.add(session)
        self._follow_tip()
        return header_result(self.reader)

    def _follow_tip(self):
        """Start watching for new tips (tips before the first subscription don't matter)."""
        if self._notified is None:
            self._notified = header_result(self.reader)

    # ---- scripts ---------------------------------------------------------------

    def subscribe(self, session, scripthash: str):
        """Subscribe to a (valid, 64-hex) script hash; returns its status hex or None.

        Raises RPCError when a subscription limit is reached or the history is
        too large; the session then holds nothing new.
        """
        tail = bytes.fromhex(scripthash)[::-1][HASHX_LEN:]
        return self._subscribe_script(session, hashX_from_scripthash(scripthash), BY_HASH, tail)

    def subscribe_script(self, session, hashX: bytes, script: bytes):
        """Subscribe to a script named by itself (its index key `hashX`): as `subscribe`,
        and notified under the script."""
        return self._subscribe_script(session, hashX, BY_SCRIPT, script)

    def _subscribe_script(self, session, hashX, naming, name):
        state = self._state(session)
        held = state.hashXs.get(hashX)
        growth = _weight(naming, len(name)) - (0 if held is None else _weight_of(held))
        if growth > 0:
            self._check_limits(state, growth)
        self._follow_tip()
        digest, in_mempool, length = script_status(self.reader, hashX, self.history_limit)
        session.bump_cost(costs.subscribe(length))
        held = _held(naming, name, digest)
        subscribers = self._scripts.get(hashX)
        if subscribers is not None:
            # Every subscriber has been sent the same status; if it changed, tell them.
            held = self._send_status(hashX, subscribers, digest, exclude=session).get(held, held)
        one_or_many.add(self._scripts, hashX, session)
        self._count(state, growth)
        state.hashXs[hashX] = held
        self._note_mempool(hashX, in_mempool)
        return _hex(digest)

    def unsubscribe(self, session, scripthash: str) -> bool:
        """Stop notifying the session about a script; False if it was not subscribed."""
        return self.unsubscribe_script(session, hashX_from_scripthash(scripthash))

    def unsubscribe_script(self, session, hashX: bytes) -> bool:
        """Stop notifying the session about the script of index key `hashX`, however it
        named it; False if it was not subscribed."""
        state = session.subscription_state
        if state is None or hashX not in state.hashXs:
            return False
        self._release(session, state, hashX)
        return True

    def _release(self, session, state, hashX):
        self._count(state, -_weight_of(state.hashXs.pop(hashX)))
        if one_or_many.discard(self._scripts, hashX, session):
            self._in_mempool.discard(hashX)

    def _note_mempool(self, hashX, in_mempool: bool):
        if in_mempool:
            self._in_mempool.add(hashX)
        else:
            self._in_mempool.discard(hashX)

    # ---- outpoints -------------------------------------------------------------

    def subscribe_outpoint(self, session, txid: bytes, out_idx: int, hashX: bytes):
        """Subscribe to output `out_idx` of `txid`, filed under the hint's `hashX`;
        returns its OutpointStatus.

        Raises RPCError when a subscription limit is reached or the hint names
        another script than the outpoint's; the session then holds nothing new.
        """
        state = self._state(session)
        growth = 0 if outpoint_key(txid, out_idx) in state.outpoints else 1
        if growth:
            self._check_limits(state, growth)
        self._follow_tip()
        status = self._outpoints.subscribe(session, state.outpoints, txid, out_idx, hashX)
        self._count(state, growth)
        return status

    def unsubscribe_outpoint(self, session, txid: bytes, out_idx: int) -> bool:
        """Stop notifying the session about an outpoint; False if it was not subscribed."""
        state = session.subscription_state
        outpoint = outpoint_key(txid, out_idx)
        if state is None or outpoint not in state.outpoints:
            return False
        self._release_outpoint(session, state, outpoint)
        return True

    def _release_outpoint(self, session, state, outpoint):
        self._outpoints.release(session, state.outpoints, outpoint)
        self._count(state, -1)

    # ---- notifications ---------------------------------------------------------

    def on_index_change(self, touched, height: int):
        """After a block flush or mempool refresh (told by the reader): notify what
        changed, once."""
        tip_changed = self._tip_changed(height)
        scripts = self._scripts
        recheck = {hashX for hashX in touched if hashX in scripts}
        if tip_changed:
            recheck.update(self._in_mempool)
        for hashX in recheck:
            self._recheck(hashX, scripts[hashX])
        self._outpoints.on_index_change(touched, tip_changed)

    def _tip_changed(self, height) -> bool:
        if self._notified is None:
            return False
        result = header_result(self.reader, height)
        if result == self._notified:
            return False
        self._notified = result
        for session in tuple(self._header_sessions):
            self._send(session, HEADERS_METHOD, [result])
        return True

    def _recheck(self, hashX, subscribers):
        """Compute a touched script's status once, and notify its subscribers if it changed."""
        try:
            digest, in_mempool, _length = script_status(self.reader, hashX, self.history_limit)
        except RPCError as error:
            # Its history outgrew the limit: the subscription can no longer be served.
            self.log.info("dropping subscriptions to {hashX}: {error}",
                          hashX=hashX.hex(), error=error.message)
            for session in one_or_many.members(subscribers):
                self._release(session, session.subscription_state, hashX)
            return
        self._note_mempool(hashX, in_mempool)
        self._send_status(hashX, subscribers, digest)

    def _send_status(self, hashX, subscribers, digest, exclude=None):
        """Tell each subscriber (but `exclude`) the status, unless it was the last one sent.

        Returns {what a subscriber holds: the same bytes}: the sessions that hold
        alike share one bytes object, and a new subscriber can join them.
        """
        key = NO_STATUS if digest is None else digest[:STATUS_KEY_LEN]
        renewed = {}        # what a session held -> what it holds now
        status = _hex(digest)
        for session in one_or_many.members(subscribers):
            if session is exclude:
                continue
            holds = session.subscription_state.hashXs
            held = holds[hashX]
            if held[_KEY_AT:_NAME_AT] == key:
                renewed.setdefault(held, held)
                continue
            new = renewed.get(held)
            if new is None:
                new = renewed[held] = held[:_KEY_AT] + key + held[_NAME_AT:]
            holds[hashX] = new
            self._send(session, *_notification(hashX, new, status))
        return {held: held for held in renewed.values()}

    def _send(self, session, method, params):
        try:
            session.send_notification(method, params)
        except Exception:
            self.log.failure("notifying session {id} failed", id=session.session_id)
