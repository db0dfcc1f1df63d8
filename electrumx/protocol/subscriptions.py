"""Script and header subscriptions, and the notifications they earn.

The registry is the one place that knows who is subscribed to what:

- per script (hashX): its subscribers and the status they were last sent,
  so a chain event touching N scripts costs N lookups and N status
  computations, however many sessions share those scripts;
- per session: the hashXs it holds (to release them on unsubscribe or
  disconnect) and whether it follows headers.

Every subscriber of a script has been sent the same status: a new subscriber
gets the freshly computed status, and if that differs from the stored one the
older subscribers are told too.  So one stored status per script stands for
"the last status sent" of all its sessions, which keeps memory per
subscription small (see `bytes_per_subscription` in the tests' measurement).

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
from electrumx.protocol import costs
from electrumx.protocol.errors import BAD_REQUEST, HISTORY_TOO_LONG, RPCError

STATUS_KEY_LEN = 8
"""Bytes of a status digest kept to notice a change (a 2**-64 chance to miss one)."""

SCRIPTHASH_METHOD = "blockchain.scripthash.subscribe"
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


# ---- the registry ------------------------------------------------------------

def _sessions_of(subscribers):
    """The sessions in a `_scripts` value: one session, or a set when shared."""
    return tuple(subscribers) if isinstance(subscribers, set) else (subscribers,)


def _sent(tail: bytes, digest) -> bytes:
    """What a session keeps per script: its script hash tail, then the status key sent."""
    return tail if digest is None else tail + digest[:STATUS_KEY_LEN]


TAIL_LEN = 32 - HASHX_LEN


class _SessionSubs:
    """A session's side of the registry (kept in `session.subscription_state`)."""

    __slots__ = ("hashXs", "headers", "group")

    def __init__(self, group):
        self.hashXs = {}
        """hashX -> the tail of the script hash as this session named it (the index
        keys only its first 11 bytes) followed by the status key last sent to it:
        one small bytes object per subscription."""
        self.headers = False
        self.group = group


@implementer(IIndexListener)
class SubscriptionRegistry:
    """Who follows which scripts and headers; sends their notifications.

    `reader` is the IChainReader it reads and is told of index changes by.
    `max_subs` bounds all script subscriptions, `max_session_subs` those of one
    session, `max_group_subs` those of one session group (`session.group_key`:
    its subnet, see `session_groups`).  A limit of None or 0 means no limit.
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
        self._header_sessions: set = set()
        self._group_counts: dict[object, int] = {}
        self.subscription_count = 0
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
        self._header_sessions.discard(session)
        session.subscription_state = None

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

    def _check_limits(self, state):
        limits = ((self.max_subs, self.subscription_count, "server"),
                  (self.max_session_subs, len(state.hashXs), "per-session"),
                  (self.max_group_subs, self._group_counts.get(state.group, 0),
                   "per-group"))
        for limit, count, what in limits:
            if limit and count >= limit:
                raise RPCError(BAD_REQUEST, f"{what} subscription limit {limit:,d} reached")

    def subscribe(self, session, scripthash: str):
        """Subscribe to a (valid, 64-hex) script hash; returns its status hex or None.

        Raises RPCError when a subscription limit is reached or the history is
        too large; the session then holds nothing new.
        """
        hashX = hashX_from_scripthash(scripthash)
        tail = bytes.fromhex(scripthash)[::-1][HASHX_LEN:]
        state = self._state(session)
        if hashX not in state.hashXs:
            self._check_limits(state)
        self._follow_tip()
        digest, in_mempool, length = script_status(self.reader, hashX, self.history_limit)
        session.bump_cost(costs.subscribe(length))
        sent = _sent(tail, digest)
        subscribers = self._scripts.get(hashX)
        if subscribers is None:
            self._scripts[hashX] = session
        else:
            # Every subscriber has been sent the same status; if it changed, tell them.
            sent = self._send_status(hashX, subscribers, digest, exclude=session).get(tail, sent)
            if isinstance(subscribers, set):
                subscribers.add(session)
            elif subscribers is not session:
                self._scripts[hashX] = {subscribers, session}
        if hashX not in state.hashXs:
            self.subscription_count += 1
            self._group_counts[state.group] = self._group_counts.get(state.group, 0) + 1
        state.hashXs[hashX] = sent
        self._note_mempool(hashX, in_mempool)
        return _hex(digest)

    def unsubscribe(self, session, scripthash: str) -> bool:
        """Stop notifying the session about a script; False if it was not subscribed."""
        hashX = hashX_from_scripthash(scripthash)
        state = session.subscription_state
        if state is None or hashX not in state.hashXs:
            return False
        self._release(session, state, hashX)
        return True

    def _release(self, session, state, hashX):
        del state.hashXs[hashX]
        self.subscription_count -= 1
        count = self._group_counts[state.group] - 1
        if count:
            self._group_counts[state.group] = count
        else:
            del self._group_counts[state.group]
        subscribers = self._scripts[hashX]
        if isinstance(subscribers, set):
            subscribers.discard(session)
            if len(subscribers) == 1:
                self._scripts[hashX] = next(iter(subscribers))
        else:
            del self._scripts[hashX]
            self._in_mempool.discard(hashX)

    def _note_mempool(self, hashX, in_mempool: bool):
        if in_mempool:
            self._in_mempool.add(hashX)
        else:
            self._in_mempool.discard(hashX)

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
            for session in _sessions_of(subscribers):
                self._release(session, session.subscription_state, hashX)
            return
        self._note_mempool(hashX, in_mempool)
        self._send_status(hashX, subscribers, digest)

    def _send_status(self, hashX, subscribers, digest, exclude=None):
        """Tell each subscriber (but `exclude`) the status, unless it was the last one sent.

        Returns {tail: what the subscribers with that tail now hold}: sessions that
        named the script alike share one bytes object.
        """
        key = b"" if digest is None else digest[:STATUS_KEY_LEN]
        held_by_tail = {}
        status = None
        for session in _sessions_of(subscribers):
            if session is exclude:
                continue
            held = session.subscription_state.hashXs
            sent = held[hashX]
            tail = sent[:TAIL_LEN]
            if sent[TAIL_LEN:] == key:
                held_by_tail.setdefault(tail, sent)
                continue
            new = held_by_tail.get(tail)
            if new is None:
                new = held_by_tail[tail] = _sent(tail, digest)
            held[hashX] = new
            if status is None:
                status = _hex(digest)
            self._send(session, SCRIPTHASH_METHOD, [(hashX + tail)[::-1].hex(), status])
        return held_by_tail

    def _send(self, session, method, params):
        try:
            session.send_notification(method, params)
        except Exception:
            self.log.failure("notifying session {id} failed", id=session.session_id)
