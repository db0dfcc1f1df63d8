"""The node's mempool, as the scripts it touches.

Following the node
    `refresh` lists the node's mempool, forgets what left it (mined, evicted,
    replaced), fetches the new transactions in batches of `BATCH_SIZE` and
    parses each one once into a `MemTx`.  Then, in one synchronous step, each
    new transaction's inputs are resolved against the mempool first (parents
    fetched in the same refresh included), then against the index.  A
    transaction with an input found nowhere is put aside, filed under that
    parent's txid, and tried again only when the parent appears (in the
    mempool or in a block) or the chain reorganises.  So a refresh that
    finds nothing new costs the diff of the two txid sets and nothing more,
    and no transaction is fetched or parsed twice.

Following the index: one tip per answer
    The mempool remembers the index tip its inputs were resolved against.
    Whatever changes its state (the synchronous step of `refresh`,
    `on_block`, `on_reorg`), and every query, first brings it to the index's
    current tip (`_follow_index`):

    - the index grew on top of the remembered tip: the undo records of the
      new blocks say which transactions they confirmed (dropped from the
      mempool; their children keep their inputs, which are the same outputs,
      now confirmed) and which outputs they spent (a mempool transaction
      spending one of those conflicts with the block: it and its descendants
      are put aside, to resolve again or leave with the node's next listing);
    - otherwise (a reorg, or an undo record missing): every input resolved
      against the index is looked up again, O(mempool), which is rare.

    The index is read and written only on the reactor thread, so between two
    reactor turns it is at one tip, and after `_follow_index` so is the
    mempool: no answer mixes two tips.  The heights in answers (0, or -1 for
    a transaction spending another mempool transaction) are computed when
    asked, so a child turns 0 the moment its parent is confirmed.  A node
    listing taken while the index moved is discarded and taken again: it may
    predate the index's new blocks.

The indexer calls `refresh` only when the index is at the node's height, and
`on_block` / `on_reorg` right after it changes the index; the scripts each
returns are the ones whose mempool part changed.
"""

from itertools import islice

from twisted.internet import defer

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.tx import ParseError
from electrumx.index import layout as L
from electrumx.index.mempool_histogram import compact_fee_histogram
from electrumx.logs import Logger


def _txids_from_hex(hex_txids):
    """The set of internal-order txids of a listing (a hot loop: 100,000 a poll)."""
    fromhex = bytes.fromhex
    return {fromhex(h)[::-1] for h in hex_txids}


class MemTx:
    """What the server keeps of one mempool transaction.

    `in_pairs` and `fee` are None while its inputs are unresolved.
    """

    __slots__ = ("prevouts", "out_pairs", "value_out", "vsize", "in_pairs", "fee")

    def __init__(self, prevouts, out_pairs, value_out, vsize):
        self.prevouts = prevouts        # the 36-byte outpoints it spends
        self.out_pairs = out_pairs      # per output (hashX, value); None if not indexed
        self.value_out = value_out
        self.vsize = vsize
        self.in_pairs = None            # per input, the (hashX, value) it spends
        self.fee = None

    @classmethod
    def from_tx(cls, tx, coin):
        to_hashX, unspendable = coin.hashX_from_script, coin.is_unspendable
        out_pairs = tuple(None if unspendable(o.script) else (to_hashX(o.script), o.value)
                          for o in tx.outputs)
        return cls(tuple(txin.prevout for txin in tx.inputs), out_pairs,
                   sum(o.value for o in tx.outputs), tx.vsize)

    def output_pair(self, prevout: bytes):
        """(hashX, value) of the output `prevout` points at, or None if there is none."""
        idx = int.from_bytes(prevout[32:], "little")
        return self.out_pairs[idx] if idx < len(self.out_pairs) else None

    def hashXs(self):
        """The scripts it funds or spends from."""
        hashXs = {hashX for hashX, _value in self.in_pairs}
        hashXs.update(pair[0] for pair in self.out_pairs if pair is not None)
        return hashXs


class MemPool:
    """The mempool, indexed by script and by spent outpoint, at the index's tip."""

    log = Logger()
    BATCH_SIZE = 500
    """Transactions per getrawtransaction batch."""
    LISTING_ATTEMPTS = 3
    """Listings taken in one refresh before giving up on an index that keeps moving."""

    def __init__(self, coin, db, daemon, clock):
        self.coin = coin
        self.db = db
        self.daemon = daemon
        self.clock = clock
        self._total_vsize = 0
        self._txs = {}              # txid -> resolved MemTx: what answers are made of,
                                    # in the order they were resolved (`recent`)
        self._hashXs = {}           # hashX -> txids in _txs touching it
        self._spenders = {}         # prevout -> txid in _txs spending it
        self._pending = {}          # txid -> parsed MemTx whose inputs are unresolved
        self._retry = set()         # pending txids to resolve at the next refresh
        self._waiting = {}          # parent txid -> pending txids waiting for it
        self._awaits = {}           # pending txid -> the parent txid it waits for
        self._unparseable = set()
        self._tip = None            # (height, hash) of the index tip resolved against
        self._unreported = set()    # scripts touched by a catch-up in a query
        self._listed = False        # whether a node listing has been applied yet
        self._histogram = []
        self._histogram_time = None
        self.node_ahead = False
        """The last refresh found the node a block ahead of the index, and waited."""

    # ---- following the node ----------------------------------------------

    def refresh(self):
        """Bring the mempool in step with the node: a Deferred of the touched hashXs.

        One at a time: the caller waits for a refresh before starting the next.
        """
        return defer.ensureDeferred(self._refresh())

    async def _refresh(self):
        for _attempt in range(self.LISTING_ATTEMPTS):
            tip = self.db.tip
            listed = _txids_from_hex(await self.daemon.mempool_hashes())
            # A listing taken after the node's next block lacks the block's transactions;
            # applied to the index's older tip, it would make them vanish from histories
            # until the index catches up.  Wait for the block instead.
            self.node_ahead = await self.daemon.best_block_hash() != hash_to_hex_str(tip)
            if self.node_ahead:
                self.log.debug("the node has a block the index has not: refresh postponed")
                return self._report(set())
            await self._fetch(listed.difference(self._txs, self._pending, self._unparseable))
            if self.db.tip == tip:
                return self._apply_listing(listed)
            self.log.debug("the index moved while the mempool was fetched: listing again")
        self.log.info("the index kept moving: mempool refresh postponed")
        return self._report(set())

    async def _fetch(self, txids):
        """Fetch and parse `txids`, a batch at a time, into the pending set."""
        txids = list(txids)
        for start in range(0, len(txids), self.BATCH_SIZE):
            batch = txids[start:start + self.BATCH_SIZE]
            raws = await self.daemon.raw_transactions([hash_to_hex_str(t) for t in batch])
            for txid, raw in zip(batch, raws):
                if raw is not None:         # None: it left the mempool since the listing
                    self._parse(txid, raw)

    def _parse(self, txid, raw):
        if txid in self._txs or txid in self._pending or txid in self._unparseable:
            return
        try:
            tx = self.coin.deserialize_tx(raw)
        except ParseError as e:
            # Remembered, so it is neither fetched nor logged again while it stays.
            self._unparseable.add(txid)
            self.log.debug("skipping mempool tx {txid}: {error}", txid=hash_to_hex_str(txid),
                           error=e)
            return
        self._pending[txid] = MemTx.from_tx(tx, self.coin)
        self._retry.add(txid)

    def _apply_listing(self, listed):
        """The synchronous step of a refresh: one index state, one node listing."""
        touched = set()
        self._follow_index(touched)
        orphans = []
        for txid in self._txs.keys() - listed:
            orphans.extend(self._unlink(txid, touched))
        for txid in self._pending.keys() - listed:
            self._drop_pending(txid)
        self._unparseable.intersection_update(listed)
        for txid in orphans:
            # A child still listed when its parent is not: the parent was mined
            # into a block the index does not have yet.
            self._demote(txid, touched)
        self._resolve_retries(touched)
        self._listed = True
        return self._report(touched)

    # ---- following the index ---------------------------------------------

    def on_block(self, mined_txids):
        """The index has new blocks: drop what they confirmed and what they conflict with.

        `mined_txids` are the new blocks' txids.  Returns the touched hashXs.
        Called before anyone is notified, this keeps a script's status from
        counting a transaction both as confirmed and as in the mempool, and
        its balance from counting an output spent twice.
        """
        touched = set()
        for txid in mined_txids:
            self._confirm(txid, touched)
        self._follow_index(touched)
        return self._report(touched)

    def on_reorg(self):
        """The index backed blocks out: re-check every input resolved against it.

        Returns the touched hashXs (the transactions put aside).
        """
        touched = set()
        self._follow_index(touched)
        return self._report(touched)

    def _follow_index(self, touched):
        """Bring the resolved state to the index's current tip (see the module docstring)."""
        db = self.db
        tip = (db.height, db.tip)
        old = self._tip
        if old == tip:
            return
        self._tip = tip
        if old is None or not (self._txs or self._pending):
            return
        changes = self._blocks_after(*old)
        if changes is None:
            self._recheck_all(touched)
            return
        spenders = self._spenders
        for created_txids, spent_prevouts in changes:
            for txid in created_txids:
                self._confirm(txid, touched)
            for prevout in spent_prevouts:
                spender = spenders.get(prevout)
                if spender is not None:
                    self._demote(spender, touched)

    def _blocks_after(self, height, block_hash):
        """[(txids confirmed, prevouts spent)] per block the index added on top of
        (height, block_hash); None if that is no longer an ancestor of the index tip
        or a block's undo record is missing."""
        db = self.db
        if height < 0 or height > db.height or db.block_hash(height) != block_hash:
            return None
        changes = []
        for h in range(height + 1, db.height + 1):
            record = db.undo_record(h)
            if record is None:
                return None
            created, spent = L.unpack_undo(record)
            changes.append(({prevout[:32] for _hashX, _tx_numb, prevout in created},
                            [entry[2] for entry in spent]))
        return changes

    def _recheck_all(self, touched):
        """Look every index-resolved input up again; put aside what no longer resolves."""
        txs, lookup = self._txs, self.db.lookup_utxo
        for txid in list(txs):
            memtx = txs.get(txid)
            if memtx is None:
                continue                    # put aside with an ancestor
            for prevout, pair in zip(memtx.prevouts, memtx.in_pairs):
                if prevout[:32] not in txs and lookup(prevout) != pair:
                    self._demote(txid, touched)
                    break
        self._waiting.clear()
        self._awaits.clear()
        self._retry.update(self._pending)

    def _current(self):
        """Catch up with the index before answering, if a hook was missed."""
        if self._tip is not None and self._tip[1] != self.db.tip:
            self._follow_index(self._unreported)

    def _report(self, touched):
        touched |= self._unreported
        self._unreported = set()
        return touched

    # ---- the state's moves -----------------------------------------------

    def _resolve_retries(self, touched):
        """Resolve the pending transactions due a try; parents unlock their children."""
        pending, waiting, awaits = self._pending, self._waiting, self._awaits
        queue = list(self._retry)
        self._retry.clear()
        while queue:
            txid = queue.pop()
            memtx = pending.get(txid)
            if memtx is None or txid in awaits:
                continue
            parent = self._resolve_inputs(memtx)
            if parent is not None:
                waiting.setdefault(parent, set()).add(txid)
                awaits[txid] = parent
                continue
            del pending[txid]
            self._link(txid, memtx, touched)
            for child in waiting.pop(txid, ()):
                del awaits[child]
                queue.append(child)

    def _resolve_inputs(self, memtx):
        """Fill in the inputs and fee of `memtx`; or return the txid of a parent not found."""
        txs, pending, lookup = self._txs, self._pending, self.db.lookup_utxo
        in_pairs = []
        for prevout in memtx.prevouts:
            prev_hash = prevout[:32]
            parent = txs.get(prev_hash)
            if parent is not None:
                pair = parent.output_pair(prevout)
            elif prev_hash in pending:
                return prev_hash
            else:
                pair = lookup(prevout)
            if pair is None:
                return prev_hash
            in_pairs.append(pair)
        memtx.in_pairs = tuple(in_pairs)
        memtx.fee = sum(value for _hashX, value in in_pairs) - memtx.value_out
        return None

    def _link(self, txid, memtx, touched):
        self._txs[txid] = memtx
        self._total_vsize += memtx.vsize
        spenders = self._spenders
        for prevout in memtx.prevouts:
            spenders[prevout] = txid
        hashXs = self._hashXs
        for hashX in memtx.hashXs():
            txids = hashXs.get(hashX)
            if txids is None:
                hashXs[hashX] = {txid}
            else:
                txids.add(txid)
            touched.add(hashX)

    def _unlink(self, txid, touched):
        """Take a resolved transaction out of the answers; return its children."""
        memtx = self._txs.pop(txid)
        self._total_vsize -= memtx.vsize
        spenders = self._spenders
        for prevout in memtx.prevouts:
            if spenders.get(prevout) == txid:
                del spenders[prevout]
        hashXs = self._hashXs
        for hashX in memtx.hashXs():
            txids = hashXs[hashX]
            txids.discard(txid)
            if not txids:
                del hashXs[hashX]
            touched.add(hashX)
        children = []
        for idx in range(len(memtx.out_pairs)):
            child = spenders.get(txid + idx.to_bytes(4, "little"))
            if child is not None:
                children.append(child)
        return children

    def _demote(self, txid, touched):
        """Put a resolved transaction and its descendants aside, to resolve again."""
        stack = [txid]
        while stack:
            txid = stack.pop()
            memtx = self._txs.get(txid)
            if memtx is None:
                continue
            stack.extend(self._unlink(txid, touched))
            memtx.in_pairs = memtx.fee = None
            self._pending[txid] = memtx
            self._retry.add(txid)

    def _confirm(self, txid, touched):
        """`txid` is in a block now: no longer in the mempool, and no longer awaited."""
        if txid in self._txs:
            self._unlink(txid, touched)     # its children's inputs are unchanged
        elif txid in self._pending:
            self._drop_pending(txid)
        self._unparseable.discard(txid)
        self._wake(txid)

    def _drop_pending(self, txid):
        """Forget a pending transaction; whatever waited for it tries again."""
        del self._pending[txid]
        self._retry.discard(txid)
        parent = self._awaits.pop(txid, None)
        if parent is not None:
            waiters = self._waiting[parent]
            waiters.discard(txid)
            if not waiters:
                del self._waiting[parent]
        self._wake(txid)

    def _wake(self, parent):
        for child in self._waiting.pop(parent, ()):
            del self._awaits[child]
            self._retry.add(child)

    # ---- queries ---------------------------------------------------------

    @property
    def tx_count(self) -> int:
        """Transactions in the mempool (resolved ones: those answers are made of)."""
        self._current()
        return len(self._txs)

    @property
    def total_vsize(self) -> int:
        """Their total vsize."""
        self._current()
        return self._total_vsize

    @property
    def pending_count(self) -> int:
        """Transactions listed by the node but not (yet) resolvable or parseable."""
        return len(self._pending) + len(self._unparseable)

    def has_tx(self, txid: bytes) -> bool:
        self._current()
        return txid in self._txs

    def transaction_summaries(self, hashX: bytes):
        """[(txid, height, fee)] of the script's mempool transactions.

        height is -1 if the transaction spends an output of another mempool
        transaction, else 0.  Ordered as protocol 1.6 requires: the 0s before
        the -1s, ties by display-order txid.
        """
        self._current()
        txs, height_of = self._txs, self._height
        summaries = []
        for txid in self._hashXs.get(hashX, ()):
            memtx = txs[txid]
            summaries.append((txid, height_of(memtx), memtx.fee))
        summaries.sort(key=lambda s: (-s[1], s[0][::-1]))
        return summaries

    def _height(self, memtx) -> int:
        """-1 if the transaction spends an output of another mempool transaction, else 0."""
        txs = self._txs
        return -1 if any(p[:32] in txs for p in memtx.prevouts) else 0

    def funding(self, prevout: bytes):
        """(height 0|-1, hashX) of the mempool output `prevout` names; None if no
        resolved mempool transaction has that txid, or its output there is past
        its last or never spendable (not indexed)."""
        self._current()
        memtx = self._txs.get(prevout[:32])
        if memtx is None:
            return None
        pair = memtx.output_pair(prevout)
        return None if pair is None else (self._height(memtx), pair[0])

    def spending(self, prevout: bytes):
        """(txid, height 0|-1) of the mempool transaction spending `prevout`, or None."""
        self._current()
        txid = self._spenders.get(prevout)
        return None if txid is None else (txid, self._height(self._txs[txid]))

    def recent(self, count: int):
        """[(txid, fee, vsize)] of the last `count` transactions resolved into the
        mempool and still in it, newest first.

        The transaction dict keeps resolution order, so this walks `count`
        entries from its end, whatever the mempool's size.  A transaction put
        aside and resolved again (after a reorg) counts as new.
        """
        self._current()
        txs = self._txs
        return [(txid, txs[txid].fee, txs[txid].vsize)
                for txid in islice(reversed(txs), max(count, 0))]

    def balance_delta(self, hashX: bytes) -> int:
        """Sats the mempool adds to the script, less its outputs (confirmed or not) it spends."""
        self._current()
        delta = 0
        for txid in self._hashXs.get(hashX, ()):
            memtx = self._txs[txid]
            delta -= sum(value for h, value in memtx.in_pairs if h == hashX)
            delta += sum(pair[1] for pair in memtx.out_pairs
                         if pair is not None and pair[0] == hashX)
        return delta

    def unspent_outputs(self, hashX: bytes):
        """[(txid, out_idx, value)] of mempool outputs to the script not spent in the
        mempool, by display-order txid then index."""
        self._current()
        spenders = self._spenders
        unspent = []
        for txid in self._hashXs.get(hashX, ()):
            for idx, pair in enumerate(self._txs[txid].out_pairs):
                if pair is not None and pair[0] == hashX and \
                        txid + idx.to_bytes(4, "little") not in spenders:
                    unspent.append((txid, idx, pair[1]))
        unspent.sort(key=lambda u: (u[0][::-1], u[1]))
        return unspent

    def spender(self, prevout: bytes):
        """The txid of the mempool transaction spending `prevout`, or None."""
        self._current()
        return self._spenders.get(prevout)

    def is_spent_in_mempool(self, prevout: bytes) -> bool:
        self._current()
        return prevout in self._spenders

    def hashXs_with_unconfirmed(self):
        """The scripts with mempool transactions: their heights may change with a block."""
        self._current()
        return set(self._hashXs)

    def fee_histogram(self):
        """[[fee rate, vsize], ...] by decreasing rate (REFERENCE §1.9).

        Recomputed at most every MEMPOOL_HISTOGRAM_REFRESH_SECS, as clients
        poll it and it costs O(mempool); before the first refresh nothing is
        cached, so a server that just started does not serve an empty
        histogram for minutes.
        """
        now = self.clock.seconds()
        if self._histogram_time is None or \
                now - self._histogram_time >= self.coin.MEMPOOL_HISTOGRAM_REFRESH_SECS:
            self._current()
            self._histogram = compact_fee_histogram(
                ((memtx.fee, memtx.vsize) for memtx in self._txs.values()),
                self.coin.MEMPOOL_HISTOGRAM_BIN_SIZE)
            if self._listed:
                self._histogram_time = now
        return self._histogram
