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

`on_chain_event(touched, height)` is an indexer listener.  It must run after
the `ChainReader`'s own listener, which drops cached histories of the touched
scripts.
"""

from hashlib import sha256

from electrumx.logs import Logger

from electrumx.chain.hashes import HASHX_LEN, hash_to_hex_str, hashX_from_scripthash
from electrumx.protocol.errors import BAD_REQUEST, HISTORY_TOO_LONG, RPCError

STATUS_KEY_LEN = 8
"""Bytes of a status digest kept to notice a change (a 2**-64 chance to miss one)."""

SCRIPTHASH_METHOD = "blockchain.scripthash.subscribe"
HEADERS_METHOD = "blockchain.headers.subscribe"


# ---- history and status: pure functions over the reader ----------------------

def history_limit(max_send: int) -> int:
    """Most history entries a reply may hold: each is about 99 bytes of JSON."""
    return (max_send - 100) // 99


def limited_history(reader, hashX: bytes, limit: int):
    """[(txid, height)] of a script's confirmed history; refused when too long."""
    history = reader.confirmed_history(hashX, limit)
    if len(history) >= limit:
        raise RPCError(HISTORY_TOO_LONG, "history too large")
    return history


def status_hash(history):
    """The Electrum status of a script as a 32-byte digest, or None without history.

    `history` is the confirmed (txid, height) pairs in chain order followed by
    the mempool ones in protocol order (REFERENCE §1.6); txids are internal order.
    """
    text = "".join(f"{hash_to_hex_str(txid)}:{height:d}:" for txid, height in history)
    return sha256(text.encode()).digest() if text else None


def script_status(reader, hashX: bytes, limit: int):
    """(status digest or None, whether the mempool had a part in it, history length)."""
    confirmed = limited_history(reader, hashX, limit)
    mempool = reader.mempool_history(hashX)
    digest = status_hash(confirmed + [(txid, height) for txid, height, _fee in mempool])
    return digest, bool(mempool), len(confirmed) + len(mempool)


def header_result(reader, height=None):
    """The {hex, height} of headers.subscribe for `height` (default: the tip)."""
    height = reader.height if height is None else min(height, reader.height)
    return {"hex": reader.header(height).hex(), "height": height}


def _status_key(digest):
    return None if digest is None else digest[:STATUS_KEY_LEN]


def _hex(digest):
    return None if digest is None else digest.hex()


# ---- the registry ------------------------------------------------------------

class _Script:
    """One subscribed script: the tail of its script hash (hashX is the head),
    the key of the status last sent, and its subscribers (one session, or a set
    when shared: most scripts have exactly one)."""

    __slots__ = ("tail", "status", "subscribers")

    def __init__(self, tail, status, subscriber):
        self.tail = tail
        self.status = status
        self.subscribers = subscriber

    def sessions(self):
        subs = self.subscribers
        return tuple(subs) if isinstance(subs, set) else (subs,)

    def add(self, session):
        subs = self.subscribers
        if isinstance(subs, set):
            subs.add(session)
        elif subs is not session:
            self.subscribers = {subs, session}

    def remove(self, session) -> bool:
        """Drop a subscriber; True when none is left."""
        subs = self.subscribers
        if isinstance(subs, set):
            subs.discard(session)
            if len(subs) == 1:
                self.subscribers = next(iter(subs))
            return False
        return subs is session


class _SessionSubs:
    """A session's side of the registry (kept in `session.subscription_state`)."""

    __slots__ = ("hashXs", "aliases", "headers", "group")

    def __init__(self, group):
        self.hashXs = {}
        """The held hashXs as dict keys: a dict takes half the memory of a set here."""
        self.aliases = None
        """hashX -> script hash tail, only where this session named the script
        differently from its first subscriber (the last 21 bytes are not indexed)."""
        self.headers = False
        self.group = group


class SubscriptionRegistry:
    """Who follows which scripts and headers; sends their notifications.

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
        self._scripts = {}           # hashX -> _Script
        self._in_mempool = set()     # hashXs whose last status involved the mempool
        self._header_sessions = set()
        self._group_counts = {}
        self.subscription_count = 0
        self._notified = None        # the {hex, height} last announced

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
        session.bump_cost(0.3 + length * 0.0025)
        status = _status_key(digest)
        script = self._scripts.get(hashX)
        if script is None:
            script = self._scripts[hashX] = _Script(tail, status, session)
        elif status != script.status:
            script.status = status
            self._send_status(hashX, script, digest, exclude=session)
        if hashX not in state.hashXs:
            script.add(session)
            state.hashXs[hashX] = None
            self.subscription_count += 1
            self._group_counts[state.group] = self._group_counts.get(state.group, 0) + 1
        if tail != script.tail:
            if state.aliases is None:
                state.aliases = {}
            state.aliases[hashX] = tail
        elif state.aliases:
            state.aliases.pop(hashX, None)
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
        if state.aliases:
            state.aliases.pop(hashX, None)
        self.subscription_count -= 1
        count = self._group_counts[state.group] - 1
        if count:
            self._group_counts[state.group] = count
        else:
            del self._group_counts[state.group]
        if self._scripts[hashX].remove(session):
            del self._scripts[hashX]
            self._in_mempool.discard(hashX)

    def _note_mempool(self, hashX, in_mempool: bool):
        if in_mempool:
            self._in_mempool.add(hashX)
        else:
            self._in_mempool.discard(hashX)

    # ---- notifications ---------------------------------------------------------

    def on_chain_event(self, touched, height: int):
        """After a block flush or mempool refresh: notify what changed, once."""
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

    def _recheck(self, hashX, script):
        try:
            digest, in_mempool, _length = script_status(self.reader, hashX, self.history_limit)
        except RPCError as error:
            # Its history outgrew the limit: the subscription can no longer be served.
            self.log.info("dropping subscriptions to {hashX}: {error}",
                          hashX=hashX.hex(), error=error.message)
            for session in script.sessions():
                self._release(session, session.subscription_state, hashX)
            return
        self._note_mempool(hashX, in_mempool)
        status = _status_key(digest)
        if status != script.status:
            script.status = status
            self._send_status(hashX, script, digest)

    def _send_status(self, hashX, script, digest, exclude=None):
        status = _hex(digest)
        for session in script.sessions():
            if session is exclude:
                continue
            aliases = session.subscription_state.aliases
            tail = aliases.get(hashX, script.tail) if aliases else script.tail
            self._send(session, SCRIPTHASH_METHOD, [(hashX + tail)[::-1].hex(), status])

    def _send(self, session, method, params):
        try:
            session.send_notification(method, params)
        except Exception:
            self.log.failure("notifying session {id} failed", id=session.session_id)
