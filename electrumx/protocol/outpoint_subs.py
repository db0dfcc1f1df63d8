"""Outpoint subscriptions (protocol 1.7's `blockchain.outpoint.subscribe`), filed by script.

An outpoint's status changes only through transactions that touch the script
its output pays: the funding transaction pays that script, the spending one
spends from it, and a block, a reorg, a replacement or an eviction that adds
or removes either touches that script's history.  So each subscribed outpoint
is filed under the hashX of the client's `spk_hint`, and an index change
touching N scripts costs N dict lookups here, and a status computation only for
the outpoints filed under a touched script.  One status change escapes this:
a mempool transaction's height turns -1 into 0 when a parent of it confirms,
which need not touch the script; so the outpoints whose last status involved
the mempool are looked at again on every new tip, as scripts are.

The hint is checked against the outpoint's script whenever the outpoint is
known (`hinted_status`); a hint for an outpoint not yet known cannot be, and if
it is wrong, the outpoint is filed under a script its changes never touch: the
client is then not told of them (the spec leaves a wrong hint's behaviour
undefined).

Memory: as for scripts, a session keeps one small bytes object per outpoint it
follows (the hashX it is filed under, then the status last sent to it, in
`status_key` form), shared by the sessions that hold the same; the registry
side is one dict entry per outpoint and hashX (`_subscribers`) and one per
script with outpoints filed under it (`_filed`).
"""

from electrumx.chain.hashes import HASHX_LEN, hash_to_hex_str
from electrumx.chain.outpoint import OutpointStatus
from electrumx.protocol import one_or_many
from electrumx.protocol.errors import BAD_REQUEST, RPCError

OUTPOINT_METHOD = "blockchain.outpoint.subscribe"

_HEIGHT_BYTES = 4


def outpoint_key(txid: bytes, out_idx: int) -> bytes:
    """36 bytes naming an outpoint: the txid (internal order), then the index."""
    return txid + out_idx.to_bytes(4, "little")


def hinted_status(reader, txid: bytes, out_idx: int, hint_hashX: bytes) -> OutpointStatus:
    """The outpoint's status; RPCError(BAD_REQUEST) if it is known to pay another script
    than the client's hint names."""
    status = reader.outpoint_status(txid, out_idx)
    if status.known and status.funder_hashX != hint_hashX:
        raise RPCError(BAD_REQUEST, f"spk_hint does not match the script of output {out_idx} "
                                    f"of {hash_to_hex_str(txid)}")
    return status


def _height(height: int) -> bytes:
    return height.to_bytes(_HEIGHT_BYTES, "little", signed=True)


def status_key(status: OutpointStatus) -> bytes:
    """The status exactly, in few bytes, to tell whether it changed: empty when unknown,
    the funder's height, then the spender's txid and height once spent."""
    if status.funder_height is None:
        return b""
    key = _height(status.funder_height)
    if status.spender_txid is not None and status.spender_height is not None:
        key += status.spender_txid + _height(status.spender_height)
    return key


class OutpointSubscriptions:
    """Who follows which outpoints, under which script; tells them of status changes.

    Each session's own side is its `subscription_state.outpoints` (outpoint key ->
    the hashX it is filed under + the status key last sent), passed in as `held`;
    counting them against the limits is the registry's job.  `send(session, method,
    params)` sends a notification.
    """

    def __init__(self, reader, send):
        self.reader = reader
        self._send = send
        self._subscribers: dict[bytes, object] = {}
        """hashX + outpoint key -> its subscriber, or a set of them."""
        self._filed: dict[bytes, object] = {}
        """hashX -> the (hashX + outpoint key) filed under it, or a set of them."""
        self._in_mempool: set[bytes] = set()
        """The (hashX + outpoint key)s whose last status involved the mempool."""

    def subscribe(self, session, held: dict, txid: bytes, out_idx: int,
                  hashX: bytes) -> OutpointStatus:
        """File the session's subscription under `hashX`; the outpoint's status.

        Raises RPCError (and files nothing) when the hint does not match.  A
        session subscribing again with another hint is filed anew under it.
        """
        status = hinted_status(self.reader, txid, out_idx, hashX)
        outpoint = outpoint_key(txid, out_idx)
        was = held.get(outpoint)
        if was is not None and was[:HASHX_LEN] != hashX:
            self.release(session, held, outpoint)
        watch = hashX + outpoint
        if watch in self._subscribers:
            # Every subscriber has been sent the same status; if it changed, tell them.
            value = self._send_status(watch, status, exclude=session)
            one_or_many.add(self._subscribers, watch, session)
        else:
            value = hashX + status_key(status)
            self._subscribers[watch] = session
            one_or_many.add(self._filed, hashX, watch)
        held[outpoint] = value
        self._note_mempool(watch, status.in_mempool)
        return status

    def release(self, session, held: dict, outpoint: bytes):
        """Forget the session's subscription to `outpoint` (which it holds)."""
        hashX = held.pop(outpoint)[:HASHX_LEN]
        watch = hashX + outpoint
        if one_or_many.discard(self._subscribers, watch, session):
            one_or_many.discard(self._filed, hashX, watch)
            self._in_mempool.discard(watch)

    def on_index_change(self, touched, tip_changed: bool):
        """Look again at the outpoints filed under touched scripts, and on a new tip at
        those whose status involved the mempool; notify the changed ones."""
        filed = self._filed
        watches: set[bytes] = set()
        for hashX in touched:
            if hashX in filed:
                watches.update(one_or_many.members(filed[hashX]))
        if tip_changed:
            watches.update(self._in_mempool)
        for watch in watches:
            outpoint = watch[HASHX_LEN:]
            status = self.reader.outpoint_status(outpoint[:32],
                                                 int.from_bytes(outpoint[32:], "little"))
            self._note_mempool(watch, status.in_mempool)
            self._send_status(watch, status)

    def _note_mempool(self, watch: bytes, in_mempool: bool):
        if in_mempool:
            self._in_mempool.add(watch)
        else:
            self._in_mempool.discard(watch)

    def _send_status(self, watch: bytes, status: OutpointStatus, exclude=None) -> bytes:
        """Tell each subscriber (but `exclude`) the status, unless it was the last one sent.

        Returns what they all hold now (one bytes object, shared).
        """
        value = watch[:HASHX_LEN] + status_key(status)
        outpoint = watch[HASHX_LEN:]
        params = None
        for session in one_or_many.members(self._subscribers[watch]):
            if session is exclude:
                continue
            held = session.subscription_state.outpoints
            changed = held[outpoint] != value
            held[outpoint] = value
            if not changed:
                continue
            if params is None:
                params = [hash_to_hex_str(outpoint[:32]), int.from_bytes(outpoint[32:], "little"),
                          status.as_json()]
            self._send(session, OUTPOINT_METHOD, params)
        return value
