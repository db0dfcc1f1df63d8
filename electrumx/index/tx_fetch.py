"""Fetching one transaction for `blockchain.transaction.get`, with or without the node's txindex.

The index knows the block of every confirmed transaction with an indexed
output (`IndexDB.tx_num_of`), so the node is asked with that block's hash
(`getrawtransaction txid verbose blockhash`), which needs no txindex.  A
node that does not take the block hash (older Bitcoin SV) is sent `getblock`
instead, and the transaction is cut out of the raw block at the position the
index gives; raw blocks are kept in a small cache, and one fetch of a block
serves every request waiting for it.  Mempool transactions, and those the
index cannot place, are asked for without a block hash.

Raw answers are kept in an LRU bounded in bytes (TX_CACHE_MB).  An entry
remembers where it came from, a block (height and hash) or the mempool, and
is served only while that is still true: the raw bytes of a txid can change
(a segwit transaction mined with another witness), so after a reorg, or once
a mempool transaction leaves the mempool, the entry is not used again and
ages out.  Verbose answers carry confirmations and are not cached.
"""

from twisted.internet import defer
from twisted.python.failure import Failure

from electrumx.chain.block import Header
from electrumx.chain.hashes import hash_to_hex_str, hex_str_to_hash
from electrumx.chain.tx import parse_tx_for_index, read_varint
from electrumx.index.lru import BytesLRU
from electrumx.index.node_replies import NO_SUCH_TX, PARSE_ERROR
from electrumx.interfaces import DaemonError

ENTRY_OVERHEAD = 120
"""Rough bytes of Python memory per cached transaction beyond its raw bytes."""
BLOCK_SHARE = 4
"""The raw-block cache (getblock fallback) gets 1/BLOCK_SHARE of the byte budget."""


def _tx_size(entry) -> int:
    return len(entry[2]) + ENTRY_OVERHEAD


def _block_size(entry) -> int:
    return len(entry[0]) + 8 * len(entry[1])


def tx_offsets(raw_block: bytes, coin) -> list[int]:
    """Where each transaction of a raw block starts, and where the last one ends."""
    try:
        count, pos = read_varint(raw_block, coin.HEADER_LEN)
        offsets = [pos]
        for _ in range(count):
            pos = parse_tx_for_index(raw_block, pos, coin.TX_FLAGS)[3]
            offsets.append(pos)
    except (IndexError, ValueError) as e:
        raise DaemonError(PARSE_ERROR, f"getblock returned a malformed block: {e}") from None
    return offsets


class TxFetcher:
    """One transaction by txid, from the cache or the node (see the module's docstring)."""

    def __init__(self, db, mempool, daemon, cache_bytes: int):
        self.db = db
        self.mempool = mempool
        self.daemon = daemon
        self.coin = db.coin
        self.txs = BytesLRU(cache_bytes, _tx_size)
        """txid -> (height or None for the mempool, block hash or None, raw bytes)."""
        self.blocks = BytesLRU(cache_bytes // BLOCK_SHARE, _block_size)
        """block hash -> (raw block, tx_offsets), for nodes without the block-hash argument."""
        self._waiters: dict[bytes, list] = {}
        """Callers waiting for a getblock or a probe already under way, by key."""

    async def fetch(self, txid_hex: str, verbose: bool):
        """The transaction's hex, or the node's verbose dict; DaemonError as the node says."""
        txid = hex_str_to_hash(txid_hex)
        in_mempool = self.mempool is not None and self.mempool.has_tx(txid)
        if not verbose:
            raw = self._cached(txid, in_mempool)
            if raw is not None:
                return raw.hex()
        place = None if in_mempool else self._place(txid)
        if place is None:
            answer = await self.daemon.raw_transaction(txid_hex, verbose)
            if in_mempool and isinstance(answer, str):
                self.txs.store(txid, (None, None, bytes.fromhex(answer)))
            return answer
        height, pos, block_hash = place
        answer = await self._confirmed(txid_hex, verbose, height, pos, block_hash)
        if isinstance(answer, str):
            self.txs.store(txid, (height, block_hash, bytes.fromhex(answer)))
        return answer

    def _cached(self, txid: bytes, in_mempool: bool):
        """The cached raw bytes, if where they came from still holds them."""
        entry = self.txs.lookup(txid)
        if entry is None:
            return None
        height, block_hash, raw = entry
        if height is None:
            current = in_mempool
        else:
            current = height <= self.db.height and self.db.block_hash(height) == block_hash
        if not current:
            self.txs.forget(txid)
            return None
        return raw

    def _place(self, txid: bytes):
        """(height, position in block, block hash) of a confirmed transaction, or None."""
        tx_num = self.db.tx_num_of(txid)
        if tx_num is None:
            return None
        height = self.db.tx_height(tx_num)
        return height, tx_num - self.db.tx_count_at(height - 1), self.db.block_hash(height)

    async def _lookup(self):
        """The node's TxLookup, asking again if it was not known at start-up (no block
        to ask then).  Still unknown, the block hash is tried, with getblock behind it."""
        lookup = self.daemon.tx_lookup
        if lookup is None or lookup.block_hash_arg is None:
            lookup = await self._shared(b"probe", self.daemon.probe_tx_lookup)
        return lookup

    async def _shared(self, key, make):
        """The result of `make()` (a coroutine or Deferred), run once for every caller that
        asks for `key` while it runs.  It runs apart from its callers: one that gives up
        (a client gone) cancels its own wait, not the others'."""
        waiter: defer.Deferred = defer.Deferred()
        waiters = self._waiters.get(key)
        if waiters is not None:
            waiters.append(waiter)
        else:
            self._waiters[key] = [waiter]       # before make(), which may finish at once
            defer.maybeDeferred(lambda: defer.ensureDeferred(make())).addBoth(
                self._settle, key)
        return await waiter

    def _settle(self, result, key):
        for waiter in self._waiters.pop(key):
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    async def _confirmed(self, txid_hex, verbose, height, pos, block_hash):
        lookup = await self._lookup()
        hash_hex = hash_to_hex_str(block_hash)
        if lookup.block_hash_arg is not False:
            try:
                answer = await self.daemon.raw_transaction(txid_hex, verbose, hash_hex)
            except DaemonError as first:
                try:
                    return await self._from_block(verbose, height, pos, block_hash)
                except DaemonError:
                    raise first from None
            if isinstance(answer, dict):
                answer.pop("in_active_chain", None)     # not asked by the client
            return answer
        if lookup.txindex is not False:
            try:
                return await self.daemon.raw_transaction(txid_hex, verbose)
            except DaemonError as e:
                if lookup.txindex or e.code != NO_SUCH_TX:
                    raise
        return await self._from_block(verbose, height, pos, block_hash)

    async def _from_block(self, verbose, height, pos, block_hash):
        """The transaction at `pos` of the block, cut out of the raw block (`getblock`)."""
        raw_block, offsets = await self._block(block_hash)
        if not 0 <= pos < len(offsets) - 1:
            raise DaemonError(PARSE_ERROR, f"block {hash_to_hex_str(block_hash)} has no "
                                           f"transaction {pos}")
        raw = raw_block[offsets[pos]:offsets[pos + 1]]
        if not verbose:
            return raw.hex()
        answer = await self.daemon.decode_transaction(raw.hex())
        timestamp = Header(raw_block[:self.coin.HEADER_LEN]).timestamp
        answer.update(hex=raw.hex(), blockhash=hash_to_hex_str(block_hash),
                      confirmations=self.db.height - height + 1, time=timestamp,
                      blocktime=timestamp)
        return answer

    async def _block(self, block_hash: bytes):
        """(raw block, tx_offsets) from the cache, or one getblock shared by all waiting."""
        entry = self.blocks.lookup(block_hash)
        if entry is None:
            entry = await self._shared(block_hash, lambda: self._fetch_block(block_hash))
        return entry

    async def _fetch_block(self, block_hash: bytes):
        raw_block = (await self.daemon.raw_blocks([hash_to_hex_str(block_hash)]))[0]
        entry = (raw_block, tx_offsets(raw_block, self.coin))
        self.blocks.store(block_hash, entry)
        return entry
