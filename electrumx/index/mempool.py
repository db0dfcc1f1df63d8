"""The node's mempool, as the scripts it touches.

`refresh` asks the node for its txids, drops the ones that left, fetches the
new ones in batches and resolves their inputs, first against other mempool
transactions, then against the index.  Everything after the fetch happens in
one synchronous step, so it sees one index state.

Consistency with the index: the indexer refreshes only when the index is at
the node's height, and `on_block`/`on_reorg` mark inputs resolved against the
index as suspect, so the next refresh re-resolves them.  Heights in answers
(0 or -1) are computed when asked, from the current mempool: a child turns
from -1 to 0 the moment its parent leaves the mempool.
"""

from twisted.internet import defer
from electrumx.logs import Logger

from electrumx.chain.hashes import hash_to_hex_str, hex_str_to_hash
from electrumx.chain.tx import ParseError


class MemTx:
    """What the server keeps of one mempool transaction."""

    __slots__ = ("prevouts", "in_pairs", "out_pairs", "fee", "vsize")

    def __init__(self, prevouts, in_pairs, out_pairs, fee, vsize):
        self.prevouts = prevouts        # 36-byte outpoints it spends
        self.in_pairs = in_pairs        # (hashX, value) of each spent output
        self.out_pairs = out_pairs      # (hashX, value) per output; None if not indexed
        self.fee = fee
        self.vsize = vsize


class MemPool:
    """The mempool, indexed by script and by spent outpoint."""

    log = Logger()
    BATCH = 500

    def __init__(self, coin, db, daemon, clock):
        self.coin = coin
        self.db = db
        self.daemon = daemon
        self.clock = clock
        self.txs = {}                   # txid -> MemTx
        self.hashXs = {}                # hashX -> set of txids
        self.spenders = {}              # prevout -> spending txid
        self.unresolved = set()         # txids seen but not (yet) resolvable
        self._histogram = None
        self._histogram_time = None

    # ---- refresh ---------------------------------------------------------

    def refresh(self):
        """Bring the mempool in step with the node; a Deferred of the touched hashXs."""
        return defer.ensureDeferred(self._refresh())

    async def _refresh(self):
        hex_hashes = await self.daemon.mempool_hashes()
        node_txids = {hex_str_to_hash(h) for h in hex_hashes}
        new = [txid for txid in node_txids if txid not in self.txs]
        raw_txs = {}
        for start in range(0, len(new), self.BATCH):
            chunk = new[start:start + self.BATCH]
            raws = await self.daemon.raw_transactions([hash_to_hex_str(t) for t in chunk])
            raw_txs.update((txid, raw) for txid, raw in zip(chunk, raws) if raw is not None)
        # From here on, synchronous: one index state, one mempool state.
        touched = set()
        for txid in [t for t in self.txs if t not in node_txids]:
            self._remove(txid, touched)
        self._add(raw_txs, touched)
        self.unresolved = {t for t in new if t not in self.txs}
        if touched:
            self._histogram = None
        return touched

    def _add(self, raw_txs, touched):
        parsed = {}
        for txid, raw in raw_txs.items():
            try:
                tx = self.coin.deserialize_tx(raw)
            except ParseError:
                self.log.debug("unparseable mempool tx {txid}", txid=hash_to_hex_str(txid))
                continue
            parsed[txid] = tx
        # Resolve in passes so parents arriving in the same refresh come first.
        pending = parsed
        while pending:
            progress = {}
            for txid, tx in pending.items():
                memtx = self._resolve(tx, pending)
                if memtx is not None:
                    progress[txid] = memtx
            if not progress:
                break
            for txid, memtx in progress.items():
                self._insert(txid, memtx, touched)
            pending = {t: tx for t, tx in pending.items() if t not in progress}

    def _resolve(self, tx, pending):
        """A MemTx for `tx`, or None if some input cannot be resolved yet."""
        to_hashX = self.coin.hashX_from_script
        unspendable = self.coin.is_unspendable
        in_pairs = []
        prevouts = []
        for txin in tx.inputs:
            prevout = txin.prevout
            parent = self.txs.get(txin.prev_hash)
            if parent is not None:
                if txin.prev_idx >= len(parent.out_pairs):
                    return None
                pair = parent.out_pairs[txin.prev_idx]
                if pair is None:
                    return None
            elif txin.prev_hash in pending:
                return None                     # its parent resolves first
            else:
                pair = self.db.lookup_utxo(prevout)
                if pair is None:
                    return None
            in_pairs.append(pair)
            prevouts.append(prevout)
        out_pairs = [None if unspendable(o.script) else (to_hashX(o.script), o.value)
                     for o in tx.outputs]
        fee = sum(v for _, v in in_pairs) - sum(o.value for o in tx.outputs)
        return MemTx(prevouts, in_pairs, out_pairs, fee, tx.vsize)

    def _insert(self, txid, memtx, touched):
        self.txs[txid] = memtx
        for prevout in memtx.prevouts:
            self.spenders[prevout] = txid
        for hashX in _tx_hashXs(memtx):
            self.hashXs.setdefault(hashX, set()).add(txid)
            touched.add(hashX)

    def _remove(self, txid, touched):
        memtx = self.txs.pop(txid)
        for prevout in memtx.prevouts:
            if self.spenders.get(prevout) == txid:
                del self.spenders[prevout]
        for hashX in _tx_hashXs(memtx):
            txids = self.hashXs.get(hashX)
            if txids is not None:
                txids.discard(txid)
                if not txids:
                    del self.hashXs[hashX]
            touched.add(hashX)

    def on_block(self, mined_txids):
        """The index moved on: drop the transactions it confirmed; return the touched hashXs.

        Dropping them now, before anyone is notified, keeps a script's status
        from counting a transaction both as confirmed and as in the mempool.
        Conflicts the block created go at the next refresh, which the indexer
        asks for at once.
        """
        touched = set()
        for txid in mined_txids:
            if txid in self.txs:
                self._remove(txid, touched)
        self._histogram = None
        return touched

    def on_reorg(self):
        """Inputs resolved against the old branch may be wrong: start afresh."""
        self.txs.clear()
        self.hashXs.clear()
        self.spenders.clear()
        self._histogram = None

    # ---- queries ---------------------------------------------------------

    @property
    def tx_count(self) -> int:
        return len(self.txs)

    @property
    def total_vsize(self) -> int:
        return sum(m.vsize for m in self.txs.values())

    def has_tx(self, txid: bytes) -> bool:
        return txid in self.txs

    def transaction_summaries(self, hashX: bytes):
        """[(txid, height, fee)]: height -1 if it spends a mempool tx, else 0.

        Ordered as protocol 1.6 requires: 0s before -1s, then by display txid.
        """
        txs = self.txs
        out = []
        for txid in self.hashXs.get(hashX, ()):
            memtx = txs[txid]
            unconfirmed = any(p[:32] in txs for p in memtx.prevouts)
            out.append((txid, -1 if unconfirmed else 0, memtx.fee))
        out.sort(key=lambda item: (-item[1], item[0][::-1]))
        return out

    def balance_delta(self, hashX: bytes) -> int:
        """Mempool outputs to the script minus mempool spends of its outputs."""
        delta = 0
        for txid in self.hashXs.get(hashX, ()):
            memtx = self.txs[txid]
            delta += sum(v for h, v in memtx.in_pairs if h == hashX) * -1
            delta += sum(pair[1] for pair in memtx.out_pairs
                         if pair is not None and pair[0] == hashX)
        return delta

    def unspent_outputs(self, hashX: bytes):
        """[(txid, out_idx, value)] of mempool outputs to the script not spent in the mempool."""
        out = []
        for txid in self.hashXs.get(hashX, ()):
            for idx, pair in enumerate(self.txs[txid].out_pairs):
                if pair is not None and pair[0] == hashX and \
                        txid + idx.to_bytes(4, "little") not in self.spenders:
                    out.append((txid, idx, pair[1]))
        out.sort(key=lambda item: (item[0][::-1], item[1]))
        return out

    def spender(self, prevout: bytes):
        return self.spenders.get(prevout)

    def is_spent_in_mempool(self, prevout: bytes) -> bool:
        return prevout in self.spenders

    def hashXs_with_unconfirmed(self):
        return set(self.hashXs)

    def fee_histogram(self):
        """[[feerate, vsize], ...] by decreasing feerate, as ElectrumX compacts it."""
        now = self.clock.seconds()
        if self._histogram is None or \
                now - self._histogram_time >= self.coin.MEMPOOL_HISTOGRAM_REFRESH_SECS:
            self._histogram = compact_fee_histogram(
                ((m.fee, m.vsize) for m in self.txs.values()),
                self.coin.MEMPOOL_HISTOGRAM_BIN_SIZE)
            self._histogram_time = now
        return self._histogram


def _tx_hashXs(memtx):
    hashXs = {h for h, _v in memtx.in_pairs}
    hashXs.update(pair[0] for pair in memtx.out_pairs if pair is not None)
    return hashXs


def compact_fee_histogram(fees_and_sizes, bin_size: int):
    """The fee histogram of REFERENCE §1.9.

    Feerates (sat/vB) are floored to 0.1; walking from the highest, sizes
    accumulate until a bin exceeds `bin_size`, which then grows by 10%.  A
    single feerate holding more than twice the bin first flushes what came
    before it, so a lump is never hidden inside a lower rate's bin.
    """
    by_rate = {}
    for fee, vsize in fees_and_sizes:
        if vsize <= 0:
            continue
        rate = int(fee * 10 / vsize) / 10       # floor to 0.1 sat/vB (fees are >= 0)
        by_rate[rate] = by_rate.get(rate, 0) + vsize
    compact = []
    cum_size = 0
    prev_rate = None
    for rate, size in sorted(by_rate.items(), reverse=True):
        if size > 2 * bin_size and prev_rate is not None and cum_size > 0:
            compact.append([prev_rate, cum_size])
            cum_size = 0
            bin_size *= 1.1
        cum_size += size
        if cum_size > bin_size:
            compact.append([rate, cum_size])
            cum_size = 0
            bin_size *= 1.1
        prev_rate = rate
    return compact          # a last bin smaller than bin_size is left out, as ElectrumX does
