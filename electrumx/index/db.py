"""The index database: opening it, its state record, every read and every write.

`IndexDB` alone holds the LevelDB handle: the rest of the server reads and
writes the index through its methods, which name what they do.

All reads and all writes happen on the reactor thread (only `compact` may run
in another), and every commit is one atomic batch (see `layout`), so a reader
between two reactor turns always sees one consistent chain: never half a
block, never a mix of two branches.

A big flush writes most of its rows ahead of its commit, in chunks (see
`write_ahead_chunk`).  The invariant that keeps them invisible: every row
written ahead carries a tx_num at or past the committed tx_count (the output's
funder in ``u`` and ``h``, the spend's funder or spender in ``s``, the first
tx_num in an ``H`` key), and every reader here skips such rows; only the block
processor, which wrote them, reads through (`find_utxo`).  A crash before the
commit leaves them listed in the ``W`` journal, which `open` clears.
"""

import json
import os
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from hashlib import sha256

import plyvel

from electrumx.chain.block import header_hash
from electrumx.chain.hashes import hash_to_hex_str
from electrumx.index import layout as L
from electrumx.private_files import make_private_directory, warn_if_open_to_others


class DBError(Exception):
    """The database cannot be used as it is: wrong version, wrong coin, unreadable."""


class ChainError(Exception):
    """The chain contradicts the index (a missing UTXO, a reorg deeper than the undo data)."""


class FlushError(Exception):
    """The database refused a write (disk full, I/O error); the index is as it was."""


@dataclass(slots=True)
class IndexState:
    """The state record committed with every flush."""

    height: int = -1
    tx_count: int = 0
    tip: bytes = bytes(32)
    genesis: str = ""
    coin: str = ""
    first_sync: bool = True
    version: int = L.LAYOUT_VERSION

    def to_bytes(self) -> bytes:
        return json.dumps({
            "height": self.height, "tx_count": self.tx_count, "tip": self.tip.hex(),
            "genesis": self.genesis, "coin": self.coin, "first_sync": self.first_sync,
            "version": self.version,
        }, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes):
        d = json.loads(raw)
        return cls(d["height"], d["tx_count"], bytes.fromhex(d["tip"]), d["genesis"],
                   d["coin"], d["first_sync"], d["version"])


def error_text(error: Exception) -> str:
    """The message of an OS or plyvel error (plyvel's come as bytes)."""
    if error.args and isinstance(error.args[0], bytes):
        return error.args[0].decode(errors="replace")
    return str(error)


def _bisect_row(row: bytes, tx_numb: bytes) -> int:
    """The number of a history row's tx_nums below `tx_numb` (both big-endian, so
    byte order is numeric order)."""
    size = L.TX_NUM_LEN
    return bisect_left(range(len(row) // size), tx_numb,
                       key=lambda i: row[i * size:(i + 1) * size])


MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LevelDBOptions:
    """How LevelDB is opened: the operator's DB_* settings (docs/performance.rst,
    "LevelDB settings", has what each was measured to do).

    Every one of them may change between two starts of the same index: the
    compression and the bloom filter apply to the table files LevelDB writes
    from then on (older files keep theirs, and stay readable), the block cache
    and the write buffer are memory only.
    """

    bloom_bits: int = 0
    """Bits per key of each table file's bloom filter (0: none).  LevelDB consults a
    filter only for a point read (`get`), never for an iterator's seek, and every
    client query and the sync's ``h`` lookup are seeks: 10 bits cost 4% more sync CPU
    on mainnet-500k and changed no query figure."""
    block_cache_mb: int = 64
    """LevelDB's cache of uncompressed table blocks, on top of the OS page cache: 8 and
    256 MB synced and served mainnet-500k as 64 MB did."""
    write_buffer_mb: int = 16
    """The memtable's size; LevelDB holds up to two (one filling, one being written).
    16 MB synced the huge bench chain at CACHE_MB=64 as fast as 64 MB with a peak RSS
    190 MB lower; on mainnet-500k at CACHE_MB=256, 64 MB took 15% less CPU for 40 MB
    more RSS, and 4 MB 13% more CPU."""
    compression: str = "snappy"
    """"snappy" or "none", for the blocks of the table files.  None took a third of
    mainnet-500k's sync CPU away but made its index 43% bigger (the UTXO tables 27%),
    and on a mainnet index it is memory for the page cache that runs out first."""

    def plyvel_arguments(self, for_sync: bool) -> dict:
        """The keyword arguments of `plyvel.DB` these options make."""
        return dict(max_open_files=512 if for_sync else 256,
                    lru_cache_size=self.block_cache_mb * MB,
                    write_buffer_size=self.write_buffer_mb * MB,
                    bloom_filter_bits=self.bloom_bits,
                    compression=None if self.compression == "none" else self.compression)


class IndexDB:
    """The LevelDB index of one coin, and every read and write the server makes of it."""

    def __init__(self, directory: str, coin, options: LevelDBOptions = LevelDBOptions()):
        self.coin = coin
        self.options = options
        self.path = os.path.join(directory, f"{coin.NAME.lower()}-{coin.NET}.leveldb")
        self._db: plyvel.DB | None = None
        self.state = IndexState()
        self.tx_counts = array("Q")
        """tx_counts[h] is the number of transactions in blocks 0..h."""
        self._journal_keys: list[bytes] = []
        """The ``W`` and ``R`` rows written since the last commit, which the next commit
        deletes.  Kept here rather than found by iterating their prefix: each holds a
        chunk's keys or spends, and iterating reads those values too (about 90 MB at
        the end of a mainnet-shaped sync, a reactor stall over 100 ms)."""

    # ---- opening ---------------------------------------------------------

    def open(self, for_sync: bool = True):
        """Open (creating if new) and load the state; refuse a foreign database.

        A directory that cannot be made or written, or a database another
        process holds (LevelDB's LOCK), raise DBError.
        """
        directory = os.path.dirname(self.path) or "."
        try:
            if not make_private_directory(directory):
                warn_if_open_to_others(directory, "DB_DIRECTORY")
            self._db = plyvel.DB(self.path, create_if_missing=True,
                                 **self.options.plyvel_arguments(for_sync))
        except (OSError, plyvel.Error) as e:
            raise DBError(f"cannot open the index at {self.path}: {error_text(e)}") from None
        raw = self._db.get(L.STATE_KEY)
        if raw is None:
            self.state = IndexState(genesis=self.coin.GENESIS_HASH, coin=self._coin_label())
            return
        state = IndexState.from_bytes(raw)
        if state.version != L.LAYOUT_VERSION:
            self.close()
            raise DBError(self._version_refusal(state.version))
        if state.genesis != self.coin.GENESIS_HASH or state.coin != self._coin_label():
            self.close()
            raise DBError(f"the index at {self.path} is for {state.coin} (genesis "
                          f"{state.genesis}), not {self._coin_label()}")
        self.state = state
        self._clear_journal()
        self._load_tx_counts()

    def _clear_journal(self):
        """Undo what a flush wrote ahead of a commit that never came (a crash): delete
        the rows it put (``W``), put back the rows of spent outputs it deleted (``R``)."""
        db = self._leveldb
        journal = list(db.iterator(prefix=L.JOURNAL_PREFIX))
        restores = list(db.iterator(prefix=L.RESTORE_PREFIX))
        if not journal and not restores:
            return
        with db.write_batch(sync=True) as batch:
            for key, value in journal:
                for row_key in L.split_journal(value):
                    batch.delete(row_key)
                batch.delete(key)
            for key, value in restores:
                for row_key, row_value in L.db_spend_rows(value):
                    batch.put(row_key, row_value)
                batch.delete(key)

    def _version_refusal(self, version) -> str:
        """Why an index of another layout version is refused, and what to do."""
        added = [f"version {v} added {what}" for v, what in sorted(L.LAYOUT_CHANGES.items())
                 if isinstance(version, int) and version < v]
        why = f" ({'; '.join(added)})" if added else ""
        return (f"the index at {self.path} has layout version {version}, this server reads "
                f"version {L.LAYOUT_VERSION}{why}: it cannot be upgraded in place; move it "
                "aside (or delete it) and restart the server, which then indexes the chain "
                "again from the node (a full re-sync)")

    def _coin_label(self):
        return f"{self.coin.NAME} {self.coin.NET}"

    def _load_tx_counts(self):
        counts = array("Q")
        for value in self._leveldb.iterator(prefix=L.HEADER_PREFIX, include_key=False):
            counts.append(L.split_header_value(value)[1])
        if len(counts) != self.state.height + 1:
            raise DBError(f"the index at {self.path} is inconsistent: {len(counts)} headers "
                          f"for height {self.state.height}")
        self.tx_counts = counts

    @property
    def _leveldb(self) -> plyvel.DB:
        """The open handle; DBError once closed (a read racing the shutdown, say)."""
        if self._db is None:
            raise DBError(f"the index at {self.path} is not open")
        return self._db

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None

    # ---- chain -----------------------------------------------------------

    @property
    def height(self) -> int:
        return self.state.height

    @property
    def tip(self) -> bytes:
        return self.state.tip

    def header(self, height: int) -> bytes:
        """The raw header at `height`; ValueError if there is none."""
        value = self._leveldb.get(L.header_key(height)) if 0 <= height <= self.height else None
        if value is None:
            raise ValueError(f"no header at height {height}")
        return L.split_header_value(value)[0]

    def headers(self, start: int, count: int) -> bytes:
        """Up to `count` consecutive raw headers from `start`, concatenated."""
        if start < 0 or count <= 0 or start > self.height:
            return b""
        stop = min(start + count, self.height + 1)
        return b"".join(
            L.split_header_value(v)[0] for v in self._leveldb.iterator(
                start=L.header_key(start), stop=L.header_key(stop), include_key=False))

    def block_hash(self, height: int) -> bytes:
        return header_hash(self.header(height))

    def block_hashes(self, start: int, count: int):
        """Internal-order hashes of blocks start .. start+count-1 (fewer past the tip)."""
        raw = self.headers(start, count)
        n = self.coin.HEADER_LEN
        return [header_hash(raw[i:i + n]) for i in range(0, len(raw), n)]

    def has_undo(self, height: int) -> bool:
        return self.undo_record(height) is not None

    def undo_record(self, height: int):
        """The undo record of the block at `height` (see `layout.unpack_undo`), or None."""
        return self._leveldb.get(L.undo_key(height))

    def undo_keys_below(self, floor: int):
        """The keys of the undo records of blocks below `floor`, to prune."""
        return self._leveldb.iterator(start=L.UNDO_PREFIX, stop=L.undo_key(floor),
                                      include_value=False)

    def tx_count_at(self, height: int) -> int:
        """Transactions in blocks 0..height (0 for height -1)."""
        return self.tx_counts[height] if height >= 0 else 0

    def tx_height(self, tx_num: int) -> int:
        return bisect_right(self.tx_counts, tx_num)

    def tx_hash(self, tx_num: int) -> bytes:
        return self._leveldb.get(L.txid_key(tx_num))

    def block_txids(self, height: int):
        """Internal-order txids of the block at `height`, in block order."""
        first = self.tx_count_at(height - 1)
        last = self.tx_counts[height]
        return list(self._leveldb.iterator(start=L.txid_key(first), stop=L.txid_key(last),
                                           include_key=False))

    # ---- scripts ---------------------------------------------------------

    def history_tx_nums(self, hashX: bytes, limit=None):
        """The tx_nums touching a script, in chain order; at most `limit` if given."""
        tx_nums = []
        for row in self._leveldb.iterator(start=L.HISTORY_PREFIX + hashX,
                                          stop=self._history_stop(hashX), include_key=False):
            tx_nums.extend(L.unpack_tx_nums(row))
            if limit is not None and len(tx_nums) >= limit:
                return tx_nums[:limit]
        return tx_nums

    def _history_stop(self, hashX: bytes) -> bytes:
        """The key past a script's committed ``H`` rows: rows written ahead start at or
        past the committed tx_count."""
        return L.HISTORY_PREFIX + hashX + L.pack_tx_num(self.state.tx_count)

    def history_rows_newest_first(self, hashX: bytes):
        """(key, row) of a script's ``H`` rows, the latest tx_nums first (to trim them)."""
        return self._leveldb.iterator(start=L.HISTORY_PREFIX + hashX,
                                      stop=self._history_stop(hashX), reverse=True)

    def history(self, hashX: bytes, limit=None):
        """[(txid, height)] of a script's confirmed transactions, in chain order."""
        return self._txids_and_heights(self.history_tx_nums(hashX, limit))

    def _txids_and_heights(self, tx_nums):
        """[(txid, height)] of tx_nums."""
        get, counts = self._leveldb.get, self.tx_counts
        return [(get(L.txid_key(n)), bisect_right(counts, n)) for n in tx_nums]

    def history_tx_nums_between(self, hashX: bytes, first: int, stop: int, limit: int):
        """The tx_nums n touching a script with first <= n < stop, in chain order; at
        most `limit`.

        Reads only the rows that hold them: the last row starting at or before
        `first` (found by a backward seek), then onwards, with a binary search
        for `first` inside that row, so a page of a long history costs the page.
        """
        stop = min(stop, self.state.tx_count)      # no row written ahead of a commit
        if stop <= first or limit <= 0:
            return []
        prefix = L.HISTORY_PREFIX + hashX
        db = self._leveldb
        start_key = prefix + L.pack_tx_num(first)
        # Keys under the prefix all have the same length: stopping just past
        # `start_key` takes the rows starting at or before `first`.
        before = next(db.iterator(start=prefix, stop=start_key + b"\x00", reverse=True,
                                  include_value=False), start_key)
        first_b, stop_b, size = L.pack_tx_num(first), L.pack_tx_num(stop), L.TX_NUM_LEN
        tx_nums: list[int] = []
        for row in db.iterator(start=before, stop=prefix + stop_b, include_key=False):
            lo = _bisect_row(row, first_b) if not tx_nums else 0
            hi = _bisect_row(row, stop_b)
            wanted = min(hi - lo, limit - len(tx_nums))
            tx_nums.extend(L.unpack_tx_nums(row[lo * size:(lo + wanted) * size]))
            if len(tx_nums) >= limit or hi * size < len(row):
                break
        return tx_nums

    def history_between(self, hashX: bytes, first: int, stop: int, limit: int):
        """[(txid, height)] of a script's transactions with tx_nums in [first, stop), in
        chain order; at most `limit`."""
        return self._txids_and_heights(self.history_tx_nums_between(hashX, first, stop, limit))

    def utxos(self, hashX: bytes):
        """[(tx_num, out_idx, value)] of a script's unspent outputs, in chain order."""
        out = []
        for key, value in self._utxo_rows(hashX):
            tx_num, out_idx = L.split_utxo_key(key)
            out.append((tx_num, out_idx, L.unpack_value(value)[0]))
        return out

    def balance(self, hashX: bytes) -> int:
        return sum(L.unpack_value(v)[0] for _key, v in self._utxo_rows(hashX))

    def _utxo_rows(self, hashX: bytes):
        """A script's committed ``u`` rows: its keys sort by tx_num, so the rows written
        ahead of a commit (at or past the committed tx_count) are past `stop`."""
        prefix = L.UTXO_PREFIX + hashX
        return self._leveldb.iterator(start=prefix,
                                      stop=prefix + L.pack_tx_num(self.state.tx_count))

    def _find_outpoint(self, prevout: bytes):
        """(hashX, tx_numb) of the unspent output `prevout` (36 bytes), or None.

        Only for the outpoints of a valid chain's inputs, which exist: a
        lone candidate is taken without reading its txid.
        """
        found = self._outpoint_row(L.outpoint_prefix(prevout), prevout, trusted=True)
        if found is None:
            return None
        tx_numb, hashX = found
        return hashX, tx_numb

    def _outpoint_row(self, prefix: bytes, prevout: bytes, trusted: bool):
        """(funding tx_numb, value) of the ``h`` or ``s`` row of `prevout` under `prefix`.

        Both tables are keyed by a txid prefix, so the full txid (from ``T``)
        decides between candidates, and for an untrusted outpoint (a client's)
        confirms a lone one too.
        """
        candidates = [(k[L.OUTPOINT_KEY_TX_NUM], v)
                      for k, v in self._leveldb.iterator(prefix=prefix)]
        if trusted and len(candidates) == 1:
            return candidates[0]
        if not trusted:
            # A client's question: only the committed rows (see the module's docstring).
            # An ``h`` value is a hashX, an ``s`` value starts with the spender's tx_num.
            committed = L.pack_tx_num(self.state.tx_count)
            candidates = [(tx_numb, value) for tx_numb, value in candidates
                          if tx_numb < committed and (prefix[:1] == L.OUTPOINT_PREFIX
                                                      or value[L.SPENT_VALUE_TX_NUM] < committed)]
        for tx_numb, value in candidates:
            if self.tx_hash(L.unpack_tx_num(tx_numb)) == prevout[L.PREVOUT_TXID]:
                return tx_numb, value
        return None

    def confirmed_outpoint(self, prevout: bytes):
        """(funding tx_num, hashX, spending tx_num or None) of the confirmed output
        `prevout` (36 bytes), or None if the index has no such output.

        Outputs never indexed (unspendable, past the transaction's last, the
        genesis coinbase's) are in neither table, so they are None too.  Two
        or three point reads, whatever the script's history.
        """
        found = self._outpoint_row(L.outpoint_prefix(prevout), prevout, trusted=False)
        if found is not None:
            tx_numb, hashX = found
            return L.unpack_tx_num(tx_numb), hashX, None
        found = self._outpoint_row(L.spent_prefix(prevout), prevout, trusted=False)
        if found is None:
            return None
        tx_numb, value = found
        return (L.unpack_tx_num(tx_numb), value[L.SPENT_VALUE_HASHX],
                L.unpack_tx_num(value[L.SPENT_VALUE_TX_NUM]))

    def tx_num_of(self, txid: bytes):
        """The tx_num of the confirmed transaction `txid` (internal order), or None.

        There is no txid table: the ``h`` and ``s`` rows of the transaction's
        outputs are keyed by its txid's head, and ``T`` confirms a candidate.
        A transaction none of whose outputs is indexed (all unspendable) is
        not found.  The scan reads the rows of every transaction sharing the
        head (almost always one), stopping at the first match.
        """
        head = txid[L.PREVOUT_TXID_HEAD]
        checked = set()
        for prefix in (L.OUTPOINT_PREFIX, L.SPENT_PREFIX):
            for key in self._leveldb.iterator(prefix=prefix + head, include_value=False):
                tx_numb = key[L.OUTPOINT_KEY_TX_NUM]
                if tx_numb in checked:
                    continue
                checked.add(tx_numb)
                tx_num = L.unpack_tx_num(tx_numb)
                if self.tx_hash(tx_num) == txid:
                    return tx_num
        return None

    def find_utxo(self, prevout: bytes):
        """(hashX, tx_numb, packed value) of the unspent confirmed output `prevout`, or None.

        For the block processor: it sees the rows it wrote ahead of its commit too."""
        found = self._find_outpoint(prevout)
        if found is None:
            return None
        hashX, tx_numb = found
        value = self._leveldb.get(L.utxo_key(hashX, tx_numb, prevout))
        if value is None:
            return None
        return hashX, tx_numb, value

    def lookup_utxo(self, prevout: bytes):
        """(hashX, value) of an unspent confirmed output, or None (for the mempool)."""
        found = self.find_utxo(prevout)
        if found is None:
            return None
        hashX, tx_numb, value = found
        if tx_numb >= L.pack_tx_num(self.state.tx_count):
            return None                 # written ahead of a commit still to come
        return hashX, L.unpack_value(value)[0]

    # ---- writing (the block processor's) ---------------------------------

    def write_ahead(self, write):
        """Write, synced, the rows `write(batch)` puts, ahead of the commit that covers them.

        Only for rows nothing reads past the committed state (txids, undo
        records; see `BlockProcessor.write_ahead_if_due`), so this batch need
        not be a transaction.  A refused write raises FlushError.
        """
        try:
            with self._leveldb.write_batch(sync=True) as batch:
                write(batch)
        except plyvel.Error as e:
            raise FlushError(f"writing the index failed: {e}") from None

    def write_ahead_chunk(self, chunk: int, rows):
        """Write, synced, one chunk of a flush's (key, value) rows ahead of its commit,
        with the ``W`` row that lists the keys, so a crash before the commit can
        take them back out (see `_clear_journal`).

        For ``u``, ``h``, ``s`` and ``H`` rows of tx_nums at or past the committed
        tx_count, which readers skip until the commit.  Synced, like `write_ahead`.
        """
        try:
            with self._leveldb.write_batch(sync=True) as batch:
                put = batch.put
                for key, value in rows:
                    put(key, value)
                batch.put(L.journal_key(chunk), b"".join(key for key, _value in rows))
        except plyvel.Error as e:
            raise FlushError(f"writing the index failed: {e}") from None
        self._journal_keys.append(L.journal_key(chunk))

    def delete_ahead_chunk(self, chunk: int, db_spends: bytes):
        """Delete, synced, the ``u`` and ``h`` rows of one chunk of a flush's DB spends
        (`layout.DB_SPEND` records end to end) ahead of its commit, with the ``R`` row
        that lets `_clear_journal` put them back after a crash.

        Unlike rows put ahead, readers see these deletions at once: only the initial
        sync flushes in steps, before any client is served.
        """
        try:
            with self._leveldb.write_batch(sync=True) as batch:
                delete = batch.delete
                for key, _value in L.db_spend_rows(db_spends):
                    delete(key)
                batch.put(L.restore_key(chunk), bytes(db_spends))
        except plyvel.Error as e:
            raise FlushError(f"writing the index failed: {e}") from None
        self._journal_keys.append(L.restore_key(chunk))

    def commit(self, state: IndexState, write, tx_counts=()):
        """Write the changes `write(batch)` puts and deletes, and `state` after them, as
        one atomic synced batch; then take `state` and the blocks' tx counts on.

        `tx_counts` are those of the blocks the commit adds; the counts of blocks
        above the new height (backed out) are dropped.  A plyvel error while
        writing, or while `write` reads, raises FlushError with nothing written
        and nothing taken on.
        """
        try:
            with self._leveldb.write_batch(transaction=True, sync=True) as batch:
                write(batch)
                # What was written ahead is committed now: its journal goes.
                for key in self._journal_keys:
                    batch.delete(key)
                batch.put(L.STATE_KEY, state.to_bytes())
        except plyvel.Error as e:
            raise FlushError(f"writing the index failed: {e}") from None
        self._journal_keys = []
        del self.tx_counts[state.height + 1:]
        self.tx_counts.extend(tx_counts)
        self.state = state

    def compact(self):
        """Compact the whole LevelDB: minutes on a large index.

        LevelDB allows this from another thread, where the admin command runs
        it, so the server keeps serving meanwhile.
        """
        self._leveldb.compact_range()

    # ---- copying -----------------------------------------------------------

    COPY_BATCH_BYTES = 4 * MB
    """Bytes of keys and values written to a copy per step: a few milliseconds of work,
    so the reactor serves clients between steps."""

    def copy_steps(self, target_path: str):
        """Copy the index as it is now into a new LevelDB at `target_path`, step by step.

        A generator for `twisted.internet.task.cooperate`: each step writes one
        batch and yields the keys copied so far.  It reads a LevelDB snapshot,
        so flushes committed while it runs are not in the copy, which is the
        index exactly as of the moment it started.
        """
        if self._db is None:
            raise DBError("the index is not open")
        snapshot = self._leveldb.snapshot()
        # The copy's table files are written with the index's own options (its
        # compression and bloom filter), so a restored backup is the index as set.
        target = plyvel.DB(target_path, create_if_missing=True, error_if_exists=True,
                           **self.options.plyvel_arguments(for_sync=False))
        try:
            copied = 0
            batch, size = target.write_batch(), 0
            for key, value in snapshot.iterator():
                batch.put(key, value)
                copied += 1
                size += len(key) + len(value)
                if size >= self.COPY_BATCH_BYTES:
                    batch.write()
                    batch, size = target.write_batch(), 0
                    yield copied
                    if self._db is None:
                        raise DBError("the index was closed during the copy")
            batch.write()
            yield copied
        finally:
            snapshot.close()
            target.close()

    # ---- verification ----------------------------------------------------

    def digest(self) -> str:
        """A hash of the index's logical content, independent of how it was flushed.

        History rows are merged per script (their split depends on flush
        timing), txids written ahead of a commit that never came are left out,
        and undo records are left out (which heights have them
        depends on the node's height at the time).  Two runs over the same
        chain must give the same digest, however often they were killed.
        """
        h = sha256()
        h.update(self.state.tip + self.state.height.to_bytes(4, "big", signed=True)
                 + self.state.tx_count.to_bytes(8, "big"))
        tables = (self._leveldb.iterator(prefix=L.HEADER_PREFIX),
                  # Txids past tx_count may have been written ahead of a commit a kill
                  # cut short.
                  self._leveldb.iterator(start=L.TXID_PREFIX, stop=L.txid_key(self.state.tx_count)),
                  self._leveldb.iterator(prefix=L.UTXO_PREFIX),
                  self._leveldb.iterator(prefix=L.OUTPOINT_PREFIX),
                  self._leveldb.iterator(prefix=L.SPENT_PREFIX))
        for table in tables:
            for key, value in table:
                h.update(key + b"=" + value + b";")
        merged, current = b"", None
        for key, value in self._leveldb.iterator(prefix=L.HISTORY_PREFIX):
            hashX = key[L.HISTORY_KEY_HASHX]
            if hashX != current:
                if current is not None:
                    h.update(current + merged + b";")
                current, merged = hashX, b""
            merged += value
        if current is not None:
            h.update(current + merged + b";")
        return h.hexdigest()

    def describe(self) -> str:
        return (f"height {self.height} tip {hash_to_hex_str(self.tip)} "
                f"txs {self.state.tx_count}")
