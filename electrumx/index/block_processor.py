"""Applying blocks to the index and backing them out.

Blocks are applied in memory: new outputs go to a UTXO cache, spends come
out of it (or, for older outputs, out of the database) and are recorded for
the spent-outpoint table, and each script's new tx_nums are appended to a
per-script buffer.  `flush` writes all of it, with the headers, txids, undo
records and the new state, as one atomic LevelDB batch.  Once caught up the
indexer flushes that way after every block.  During initial sync it flushes
when the cache reaches CACHE_MB, and on catching up, with `flush_steps`: the
bulk (UTXO, outpoint, spent and history rows) is written ahead in chunks that
readers ignore until the commit (see `IndexDB`), so the reactor gets a turn
between chunks, and the atomic commit that follows is small.  A block, too,
can be applied in steps (`advance_block_steps`): a mainnet block of thousands
of transactions takes longer than the reactor may be held.

Everything here is synchronous and runs on the reactor thread: there are no
locks because there is no other thread.
"""

import itertools
from dataclasses import replace
from struct import Struct

from electrumx.logs import Logger

from electrumx.chain.block import header_hash
from electrumx.chain.hashes import hash_to_hex_str
from electrumx.index import layout as L
from electrumx.index.db import ChainError, FlushError

_TXID = Struct("32s")
_OUT_IDX_LE = [i.to_bytes(4, "little") for i in range(4096)]


def _out_idx_le(i):
    return _OUT_IDX_LE[i] if i < 4096 else i.to_bytes(4, "little")


class BlockProcessor:
    """The index's write side: apply blocks, flush, back blocks out."""

    log = Logger()

    # The CACHE_MB budget, per cached item: its Python memory plus what writing it costs
    # at the flush.  LevelDB takes the whole batch into one memtable, so a put briefly
    # costs about 32 + 2 x (key + value) bytes there (the batch's own copy and the
    # memtable's node); measured with plyvel.  Counting only the Python side let a
    # flush raise the RSS by 2.5 times the cache (5 times for a spend's 29 bytes).
    UTXO_ENTRY_BYTES = 220 + 180
    """A dict entry of a 36-byte prevout and a 24-byte entry; at the flush, a ``u`` and an
    ``h`` put."""
    SPEND_BYTES = L.SPEND_RECORD.size + 120
    """A record in `spends`; at the flush, an ``s`` put of 25 + 16 bytes."""
    HISTORY_SCRIPT_BYTES = 200 + 70
    """A dict entry of a hashX and its bytearray; at the flush, a row's put."""
    HISTORY_ENTRY_BYTES = L.TX_NUM_LEN * 3
    """A tx_num in a history row: in the bytearray and twice in the flush."""
    DB_SPEND_BYTES = L.DB_SPEND.size + 2 * 70
    """A record in `db_spends`; at the flush, the deletion of its two rows."""
    TXID_BYTES = 32 + 110
    """A txid in `txids`; at the flush or write-ahead, a put of 6 + 32 bytes."""
    UNDO_FACTOR = 2
    """An undo record's bytes, in Python and at the flush (large values cost about
    their size there)."""
    WRITE_AHEAD_BYTES = 256 * 1024
    """During sync, txids and undo records are written once this much has gathered."""
    FLUSH_CHUNK_ROWS = 2_000
    """Rows per chunk a stepped flush writes ahead of its commit: a few tens of
    milliseconds of work each, so the reactor is never held for long."""
    BLOCK_STEP_TXS = 200
    """Transactions per step of `advance_block_steps`: a few milliseconds of work."""
    EMPTY_STEP_ITEMS = 25_000
    """Items of a flushed cache freed per step after a stepped flush's commit: about 10
    milliseconds of work."""

    def __init__(self, db, reorg_limit: int):
        self.db = db
        self.coin = db.coin
        self.reorg_limit = reorg_limit
        self.undo_from_height = 0
        """Blocks at or above this height keep undo records (the indexer sets it)."""
        self._block_in_progress = None
        """The steps of a block being applied, until its last one has run."""
        self.broken = False
        """A block failed half-applied: the caches hold part of it, so they must never
        be flushed."""
        self._reset_caches()

    def _reset_caches(self):
        self.generation = getattr(self, "generation", 0) + 1
        """Counts the cache resets, so a stepped flush knows if another flush (or a
        backout) overtook it."""
        state = self.db.state
        self.height = state.height
        self.tip = state.tip
        self.tx_count = state.tx_count
        self.utxo_cache = {}
        self.db_spends = bytearray()
        """The outputs spent from the database since the last flush, a `layout.DB_SPEND`
        each, end to end: their ``u`` and ``h`` rows are to be deleted."""
        self.history = {}
        self.history_entries = 0
        self.spends = bytearray()
        """Every spend since the last flush, a `layout.SPEND_RECORD` each, end to end: the
        ``s`` rows to write (an output created and spent between two flushes too)."""
        self.txids = bytearray()
        """The new transactions' txids end to end, 32 bytes each: one buffer, not an
        80-byte bytes object per transaction (a sync caches millions)."""
        self.txids_from = state.tx_count
        """The tx_num of the first txid in `txids` (later than the state's after a
        write-ahead)."""
        self.headers = []
        self.undo_records = []
        self.undo_bytes = 0

    # ---- going forward ---------------------------------------------------

    def advance_block(self, raw_block: bytes):
        """Apply the next block at once.  Its previous hash must be our tip.

        Raises ChainError if an input spends an output the index does not have.
        """
        for _ in self.advance_block_steps(raw_block):
            pass

    def advance_block_steps(self, raw_block: bytes):
        """Apply the next block in steps: an iterator that yields after parsing the block
        and after every BLOCK_STEP_TXS of its transactions, so the caller can give
        the reactor a turn between steps.

        Until the last step has run, the block is half in the caches: nothing
        reads them meanwhile (readers read the database), and every flush first
        finishes the block (`finish_block`), also when the caller has let the
        iterator go.  An exception once the block's changes have begun leaves the
        processor `broken`: it can no longer be flushed, so the index stays at its
        last flush.
        """
        if self._block_in_progress is not None:
            raise RuntimeError("a block is already being applied")
        self._block_in_progress = self._apply_block(raw_block)
        return self._block_in_progress

    def _apply_block(self, raw_block: bytes):
        steps = self._block_steps(raw_block)
        try:
            next(steps)         # checks and parsing: if they fail, nothing has changed
            yield
            try:
                yield from steps
            except Exception:
                self.broken = True
                raise
        finally:
            self._block_in_progress = None

    def finish_block(self):
        """Run the remaining steps of a block being applied, if any."""
        steps = self._block_in_progress
        if steps is not None:
            for _ in steps:
                pass

    def _block_steps(self, raw_block: bytes):
        height = self.height + 1
        header = raw_block[:self.coin.HEADER_LEN]
        if header[4:36] != self.tip and height > 0:
            raise ChainError(f"block at height {height} does not connect to our tip")
        txs = self.coin.parse_block_txs(raw_block)
        if height == 0:
            # The genesis coinbase can never be spent: nothing of it is indexed.
            txs = [(txid, (), ()) for txid, _prevouts, _outputs in txs]
        yield
        keep_undo = height >= self.undo_from_height
        created_undo = []
        spent_undo = []

        utxo_cache = self.utxo_cache
        cache_pop = utxo_cache.pop
        history = self.history
        txids = self.txids
        spend_from_db = self._spend_from_db
        record_spend = self.spends.extend
        # The coin's rules: which outputs can never be spent differs between chains.
        unspendable = self.coin.is_unspendable
        to_hashX = self.coin.hashX_from_script
        pack_tx_num = L.pack_tx_num
        pack_entry = L.pack_utxo_entry
        entry_hashX, entry_owner, entry_value = L.ENTRY_HASHX, L.ENTRY_OWNER, L.ENTRY_VALUE
        txid_head, idx_le = L.PREVOUT_TXID_HEAD, L.PREVOUT_OUT_IDX
        out_idx_le = _out_idx_le
        tx_num = self.tx_count
        entries = 0
        step = self.BLOCK_STEP_TXS

        for done, (txid, prevouts, outputs) in enumerate(txs, 1):
            tx_numb = pack_tx_num(tx_num)
            touched = set()
            for prevout in prevouts:
                cached = cache_pop(prevout, None)
                if cached is None:
                    cached = spend_from_db(prevout)
                touched.add(cached[entry_hashX])
                record_spend(prevout[txid_head])
                record_spend(prevout[idx_le])
                record_spend(cached[entry_owner])
                record_spend(tx_numb)
                if keep_undo:
                    spent_undo.append(cached[entry_owner] + prevout + cached[entry_value])
            for idx, (value, script) in enumerate(outputs):
                if unspendable(script):
                    continue
                hashX = to_hashX(script)
                touched.add(hashX)
                prevout = txid + out_idx_le(idx)
                utxo_cache[prevout] = pack_entry(hashX, tx_numb, value)
                if keep_undo:
                    created_undo.append(hashX + tx_numb + prevout)
            for hashX in touched:
                row = history.get(hashX)
                if row is None:
                    history[hashX] = bytearray(tx_numb)
                else:
                    row += tx_numb
            entries += len(touched)
            txids += txid
            tx_num += 1
            if done % step == 0:
                yield

        self.history_entries += entries
        self.tx_count = tx_num
        self.headers.append((height, header, tx_num))
        if keep_undo:
            record = L.pack_undo(b"".join(created_undo), b"".join(spent_undo))
            self.undo_records.append((height, record))
            self.undo_bytes += len(record)
        self.height = height
        self.tip = header_hash(header)

    def _spend_from_db(self, prevout: bytes) -> bytes:
        """Spend a flushed output: queue its deletion and return its UTXO entry."""
        found = self.db.find_utxo(prevout)
        if found is None:
            raise ChainError(f"UTXO {hash_to_hex_str(prevout[L.PREVOUT_TXID])}:"
                             f"{int.from_bytes(prevout[L.PREVOUT_OUT_IDX], 'little')} "
                             "not found in the index")
        hashX, tx_numb, value = found
        self.db_spends += L.DB_SPEND.pack(hashX, tx_numb, prevout[L.PREVOUT_TXID_HEAD],
                                          prevout[L.PREVOUT_OUT_IDX], value)
        return hashX + tx_numb + value

    # ---- flushing --------------------------------------------------------

    def cache_bytes(self) -> int:
        """Memory held by unflushed changes, and what flushing them will briefly add
        (see UTXO_ENTRY_BYTES); the indexer flushes when it reaches CACHE_MB.  Txids and
        undo records are written ahead, WRITE_AHEAD_BYTES at a time."""
        return (len(self.utxo_cache) * self.UTXO_ENTRY_BYTES
                + len(self.history) * self.HISTORY_SCRIPT_BYTES
                + self.history_entries * self.HISTORY_ENTRY_BYTES
                + len(self.spends) // L.SPEND_RECORD.size * self.SPEND_BYTES
                + len(self.txids) // 32 * self.TXID_BYTES
                + self.undo_bytes * self.UNDO_FACTOR
                + len(self.db_spends) // L.DB_SPEND.size * self.DB_SPEND_BYTES)

    def pending_txids(self):
        """The txids not yet written, in order: once caught up, those of the blocks
        applied since the last flush (only a sync writes ahead, and it flushes
        before it is caught up)."""
        txids = bytes(self.txids)
        return [txids[i:i + 32] for i in range(0, len(txids), 32)]

    def touched_scripts(self):
        """The scripts changed by the blocks applied since the last flush."""
        return set(self.history)

    def write_ahead_if_due(self):
        """During sync: write the gathered txids and undo records ahead of the flush
        that commits their blocks, once they reach WRITE_AHEAD_BYTES.

        Neither is ever read past the committed state (a txid by a tx_num beyond
        its tx_count, an undo record above its height), and applying a block
        again writes its own over them, so a crash before the commit leaves
        nothing wrong.  The cache then holds, and the commit writes at once,
        only what must change atomically.  The write is synced: after a power
        cut, a commit must never survive what it relies on.
        """
        if len(self.txids) + self.undo_bytes < self.WRITE_AHEAD_BYTES:
            return
        self.db.write_ahead(self._write_ahead)
        self.txids_from += len(self.txids) // 32
        self.txids = bytearray()
        self.undo_records = []
        self.undo_bytes = 0

    def flush(self, first_sync: bool):
        """Write every unflushed change and the new state as one atomic batch.

        Raises FlushError, changing nothing, if the database refuses the write.
        """
        self._before_flush()

        def write(batch):
            put, delete = batch.put, batch.delete
            for key, value in self._rows_ahead():
                put(key, value)
            for key, _value in L.db_spend_rows(self.db_spends):
                delete(key)
            self._write_commit(batch)
        self._commit(first_sync, write)

    def flush_steps(self, first_sync: bool):
        """`flush` in steps, a generator: each step writes one chunk of the bulk ahead of
        the commit, the last one commits the rest.  The bulk is the new rows
        (`IndexDB.write_ahead_chunk`), then the deletion of the rows of outputs
        spent from the database (`IndexDB.delete_ahead_chunk`), so the commit
        holds little more than the headers and the state.

        Readers see the deletions before the commit, so only the initial sync
        (`first_sync`) flushes in steps; otherwise this is `flush`.  No block may
        be applied until it is exhausted.  If another flush or a backout overtakes
        it between steps, it stops: that one wrote everything.
        Raises FlushError like `flush`; a crash at any step leaves the index as
        the last commit left it (the journal is undone on opening).
        """
        if not first_sync:
            # Clients are served: deletions written ahead would show them outputs spent
            # before the commit.  Caught up, the cache holds a block at most: one batch.
            self.flush(first_sync)
            yield
            return
        self._before_flush()
        generation = self.generation
        rows = self._rows_ahead()
        chunks = itertools.count()
        for chunk in chunks:
            batch = list(itertools.islice(rows, self.FLUSH_CHUNK_ROWS))
            if not batch:
                break
            self.db.write_ahead_chunk(chunk, batch)
            yield
            if self.generation != generation:
                return
        spends = self.db_spends
        step = self.FLUSH_CHUNK_ROWS // 2 * L.DB_SPEND.size      # two rows a spend
        for start in range(0, len(spends), step):
            self.db.delete_ahead_chunk(next(chunks), spends[start:start + step])
            yield
            if self.generation != generation:
                return
        emptied = (self.utxo_cache, self.history)
        self._commit(first_sync, self._write_commit)
        yield
        # The commit put fresh caches in their place.  Dropped at once, these would free
        # millions of objects in one reactor turn (60-80 ms for 256 MB): a slice a step.
        for cache in emptied:
            yield from _empty_in_steps(cache, self.EMPTY_STEP_ITEMS)

    def _before_flush(self):
        """Finish a block being applied; refuse if one failed half-applied."""
        if self.broken:
            raise FlushError("a block failed half-applied: the index stays at its last "
                             "flush")
        self.finish_block()

    def _commit(self, first_sync: bool, write):
        state = self.db.state
        if self.height == state.height and not self.db_spends:
            return
        new_state = replace(state, height=self.height, tx_count=self.tx_count, tip=self.tip,
                            first_sync=first_sync)
        self.db.commit(new_state, write,
                       [tx_count for _height, _header, tx_count in self.headers])
        self._reset_caches()

    def _write_ahead(self, batch):
        self._write_txids(batch.put)
        self._write_undo(batch.put)

    def _write_txids(self, put):
        # Read from the buffer as written: a list of the txids (as pending_txids makes)
        # would add 80 bytes of Python objects per txid to the write's peak.
        txid_key = L.txid_key
        for tx_num, (txid,) in enumerate(_TXID.iter_unpack(self.txids), self.txids_from):
            put(txid_key(tx_num), txid)

    def _undo_floor(self) -> int:
        """The lowest height whose undo record is kept."""
        return self.height - self.reorg_limit + 1

    def _write_undo(self, put):
        floor = self._undo_floor()
        for height, record in self.undo_records:
            if height >= floor:
                put(L.undo_key(height), record)

    def _rows_ahead(self):
        """(key, value) of the ``s``, ``u``, ``h`` and ``H`` rows of the blocks applied since
        the last flush: the bulk of a flush, which can be written ahead of its
        commit (every row carries a tx_num past the committed state's)."""
        spent_prefix = L.SPENT_PREFIX
        for outpoint, hashX, funder, spender in L.SPEND_RECORD.iter_unpack(self.spends):
            yield spent_prefix + outpoint + funder, spender + hashX
        # L.utxo_key and L.outpoint_key, spelled out with the layout's slices: this
        # loop runs once per output a sync caches.
        utxo_prefix, outpoint_prefix = L.UTXO_PREFIX, L.OUTPOINT_PREFIX
        entry_hashX, entry_tx_num = L.ENTRY_HASHX, L.ENTRY_TX_NUM
        entry_owner, entry_value = L.ENTRY_OWNER, L.ENTRY_VALUE
        txid_head, idx_le, idx_be = L.PREVOUT_TXID_HEAD, L.PREVOUT_OUT_IDX, L.PREVOUT_OUT_IDX_BE
        for prevout, entry in self.utxo_cache.items():
            yield utxo_prefix + entry[entry_owner] + prevout[idx_be], entry[entry_value]
            yield (outpoint_prefix + prevout[txid_head] + prevout[idx_le] + entry[entry_tx_num],
                   entry[entry_hashX])
        history_key = L.history_key
        for hashX, tx_nums in self.history.items():
            yield history_key(hashX, tx_nums), bytes(tx_nums)

    def _write_commit(self, batch):
        """Put the rows a flush writes in its commit: txids and undo records not yet
        written ahead, headers, the deletion of old undo records."""
        put, delete = batch.put, batch.delete
        self._write_txids(put)
        for height, header, tx_count in self.headers:
            put(L.header_key(height), L.header_value(header, tx_count))
        self._write_undo(put)
        floor = self._undo_floor()
        if floor > 0:
            for key in self.db.undo_keys_below(floor):
                delete(key)

    # ---- going backward --------------------------------------------------

    def backup_block(self):
        """Back the tip block out of the index (caches must be flushed).

        Returns the scripts it touched.  Raises ChainError, changing nothing,
        when the block has no undo record (a reorg deeper than REORG_LIMIT).
        """
        db = self.db
        height = db.height
        if self.height != height or self.utxo_cache or self.history:
            raise RuntimeError("flush before backing blocks out")
        if height <= 0:
            raise ChainError("cannot back out the genesis block")
        record = db.undo_record(height)
        if record is None:
            raise ChainError(
                f"no undo information for height {height}: the reorg is deeper than the undo "
                f"data kept (REORG_LIMIT={self.reorg_limit}); the index is unchanged")
        created, spent = L.unpack_undo(record)
        first = db.tx_count_at(height - 1)
        last = db.tx_counts[height]
        prev_hash = db.header(height)[4:36]
        touched = set()

        def write(batch):
            for hashX, tx_numb, prevout in created:
                batch.delete(L.utxo_key(hashX, tx_numb, prevout))
                batch.delete(L.outpoint_key(prevout, tx_numb))
                touched.add(hashX)
            for hashX, tx_numb, prevout, value in spent:
                touched.add(hashX)
                batch.delete(L.spent_key(prevout, tx_numb))
                if L.unpack_tx_num(tx_numb) < first:
                    batch.put(L.utxo_key(hashX, tx_numb, prevout), L.pack_value(value))
                    batch.put(L.outpoint_key(prevout, tx_numb), hashX)
            for hashX in touched:
                self._trim_history(batch, hashX, first)
            for tx_num in range(first, last):
                batch.delete(L.txid_key(tx_num))
            batch.delete(L.header_key(height))
            batch.delete(L.undo_key(height))

        db.commit(replace(db.state, height=height - 1, tx_count=first, tip=prev_hash), write)
        self._reset_caches()
        self.log.info("backed out block {height} {hash}", height=height,
                      hash=hash_to_hex_str(db.block_hash(height - 1)) if height > 1 else "")
        return touched

    def _trim_history(self, batch, hashX, first_tx_num):
        """Remove tx_nums >= first_tx_num from a script's history rows."""
        size = L.TX_NUM_LEN
        for key, row in self.db.history_rows_newest_first(hashX):
            if L.unpack_tx_num(key[L.HISTORY_KEY_FIRST_TX_NUM]) >= first_tx_num:
                batch.delete(key)
                continue
            keep = len(row)
            while keep and L.unpack_tx_num(row[keep - size:keep]) >= first_tx_num:
                keep -= size
            if keep != len(row):
                batch.put(key, row[:keep])
            break


def _empty_in_steps(mapping: dict, per_step: int):
    """Empty `mapping` `per_step` items at a time, a generator step each."""
    pop = mapping.popitem
    while mapping:
        for _ in range(min(per_step, len(mapping))):
            pop()
        yield
