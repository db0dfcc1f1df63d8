"""What the protocol layer may ask of the index: the read API.

Sessions never reach into the block processor or the database layout; they
ask a `ChainReader`.  Every method that reads the index is synchronous and
runs on the reactor thread between two index writes, so one call never mixes
two chains.  A caller that needs several reads (say, history then a merkle
branch) in one answer should make them in one reactor turn.
"""

from hashlib import sha256

import orjson
from twisted.internet import defer
from zope.interface import implementer

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.merkle import MerkleCache, MerkleTree
from electrumx.chain.outpoint import UNKNOWN, OutpointStatus
from electrumx.chain.status import status_hash, status_text
from electrumx.index.lru import LRU, BytesLRU
from electrumx.index.tx_fetch import TxFetcher
from electrumx.interfaces import IChainReader, IIndexListener
from electrumx.logs import Logger
from electrumx.observer import Listeners


@implementer(IChainReader, IIndexListener)
class ChainReader:
    """Reads of the confirmed index and the mempool for the protocol layer, and the
    node calls made on a client's behalf (so the protocol layer never names the node's
    RPC methods).

    It is the indexer's listener, and tells its own listeners (the subscription
    registry) of each change only after forgetting the answers the change made
    stale: a listener that reads the reader then sees the new index, whatever
    order things were wired in.
    """

    log = Logger()
    MERKLE_CACHE_MIN_TXS = 200
    """Blocks with at least this many transactions keep their merkle tree cached."""
    MERKLE_CACHE_BYTES = 32 * 1024 * 1024
    """The merkle tree cache's bound: about 170 blocks of 3,000 transactions."""
    HISTORY_JSON_MIN = 100
    """Histories at least this long keep their JSON cached (shorter ones are cheap)."""
    HISTORY_JSON_BYTES = 64 * 1024 * 1024
    TX_CACHE_BYTES = 64 * 1024 * 1024
    """The raw transaction cache's default bound (TX_CACHE_MB)."""

    def __init__(self, db, mempool, daemon, tx_cache_bytes: int = TX_CACHE_BYTES):
        """`daemon` is an INodeRelay: the node calls made for clients go through it."""
        self.db = db
        self.mempool = mempool
        self.daemon = daemon
        self.coin = db.coin
        self._header_merkle = MerkleCache(self.db.block_hashes)
        self._merkle_trees = BytesLRU(self.MERKLE_CACHE_BYTES, size_of=_tree_bytes)
        self._history = LRU(5000)
        self._history_json = BytesLRU(self.HISTORY_JSON_BYTES)
        self._status_hashers = LRU(10_000)
        self._tx_fetcher = TxFetcher(db, mempool, daemon, tx_cache_bytes)
        self._listeners = Listeners(self.log, "index change")

    # ---- after the index changes -----------------------------------------

    def add_listener(self, listener):
        """Tell `listener` (an IIndexListener) of each index change, after this reader
        has forgotten the answers the change made stale.  A listener that fails is
        logged, and the others are still told (as the indexer does with its own)."""
        self._listeners.add(listener.on_index_change)

    def on_index_change(self, touched, height):
        """Forget cached answers the change made stale, then tell the listeners."""
        for hashX in touched:
            self._history.pop(hashX, None)
            self._history_json.forget(hashX)
            self._status_hashers.pop(hashX, None)
        self._header_merkle.truncate(height + 1)
        stale = [h for h in self._merkle_trees if h > height]
        for h in stale:
            self._merkle_trees.forget(h)
        self._listeners.tell(touched, height)

    def cache_stats(self):
        return {name: {"entries": len(c), "hits": c.hits, "misses": c.misses}
                for name, c in (("history", self._history), ("merkle_trees", self._merkle_trees),
                                ("history_json", self._history_json),
                                ("status", self._status_hashers),
                                ("raw_tx", self._tx_fetcher.txs))}

    # ---- headers ---------------------------------------------------------

    @property
    def height(self) -> int:
        return self.db.height

    @property
    def tip(self) -> bytes:
        return self.db.tip

    @property
    def header_len(self) -> int:
        return self.coin.HEADER_LEN

    def header(self, height: int) -> bytes:
        return self.db.header(height)

    def headers(self, start: int, count: int) -> bytes:
        return self.db.headers(start, count)

    def header_branch(self, height: int, cp_height: int):
        """(branch, root) proving block `height` against the checkpoint `cp_height`."""
        if not 0 <= height <= cp_height <= self.db.height:
            raise ValueError(f"need height <= cp_height <= {self.db.height}")
        return self._header_merkle.branch_and_root(cp_height + 1, height)

    # ---- scripts ---------------------------------------------------------

    def confirmed_history(self, hashX: bytes, limit=None):
        """[(txid, height)] in chain order; at most `limit` entries if given."""
        cached = self._history.lookup(hashX)
        if cached is None:
            history = self.db.history(hashX, limit)
            if limit is None or len(history) < limit:     # complete: worth keeping
                self._history.store(hashX, history)
            return history
        return cached if limit is None else cached[:limit]

    def confirmed_history_json(self, hashX: bytes, limit: int, from_height: int = 0,
                               to_height: int | None = None):
        """(count, JSON) of the confirmed history as get_history sends it: the entries
        `{"tx_hash": ..., "height": ...}` joined by commas, without brackets.

        Only entries with from_height <= height < to_height (None: no upper
        bound) are read, and at most `limit` of them (a count of `limit` means:
        too long).  A page is read from the script's rows that hold it, found
        by the tx_nums the heights start at, so its cost does not grow with
        the whole history.  A wallet asks for a busy script's whole history
        again and again while it does not change; that JSON is kept until the
        script is touched.
        """
        if from_height > 0 or to_height is not None:
            return self._history_page_json(hashX, limit, from_height, to_height)
        cached = self._history_json.lookup(hashX)
        if cached is not None and cached[0] < limit:
            return cached
        result = self._json(self.confirmed_history(hashX, limit))
        if self.HISTORY_JSON_MIN <= result[0] < limit:
            self._history_json.store(hashX, result)
        return result

    def _history_page_json(self, hashX, limit, from_height, to_height):
        db = self.db
        top = db.height + 1
        start = min(max(from_height, 0), top)
        stop = top if to_height is None else min(max(to_height, start), top)
        page = db.history_between(hashX, db.tx_count_at(start - 1), db.tx_count_at(stop - 1),
                                  limit)
        return self._json(page)

    @staticmethod
    def _json(history):
        text = orjson.dumps([{"tx_hash": hash_to_hex_str(txid), "height": height}
                             for txid, height in history])[1:-1]
        return len(history), text

    def confirmed_status_hasher(self, hashX: bytes, limit: int):
        """(count, a sha256 fed the confirmed part of the script's status text).

        The status of a script with a long history costs far more to hash
        (7.5 ms for 20,000 entries) than its cached history costs to read, and
        subscribing wallets ask for it again and again: for busy scripts the
        hasher is kept until the script is touched.  Copy it before feeding it
        the mempool part.  At most `limit` entries are read (a count of
        `limit` means: too long).
        """
        cached = self._status_hashers.lookup(hashX)
        if cached is not None:
            return cached
        history = self.confirmed_history(hashX, limit)
        result = (len(history), sha256(status_text(history)))
        if self.HISTORY_JSON_MIN <= len(history) < limit:
            self._status_hashers.store(hashX, result)
        return result

    def mempool_history(self, hashX: bytes):
        """[(txid, height 0|-1, fee)] in the order protocol 1.6 mandates."""
        return self.mempool.transaction_summaries(hashX) if self.mempool else []

    def status(self, hashX: bytes):
        """The Electrum status of a script (hex), or None when it has no history."""
        digest = status_hash(self.confirmed_history(hashX) + [
            (txid, height) for txid, height, _fee in self.mempool_history(hashX)])
        return digest.hex() if digest else None

    def balance(self, hashX: bytes):
        """(confirmed, unconfirmed) in sats; unconfirmed is the mempool's delta."""
        delta = self.mempool.balance_delta(hashX) if self.mempool else 0
        return self.db.balance(hashX), delta

    def utxos(self, hashX: bytes):
        """[(txid, out_idx, height, value)]: confirmed ones not spent in the mempool,
        then mempool outputs (height 0) not spent in the mempool."""
        db = self.db
        spent = self.mempool.is_spent_in_mempool if self.mempool else (lambda prevout: False)
        out = []
        for tx_num, idx, value in db.utxos(hashX):
            txid = db.tx_hash(tx_num)
            if not spent(txid + idx.to_bytes(4, "little")):
                out.append((txid, idx, db.tx_height(tx_num), value))
        if self.mempool:
            out.extend((txid, idx, 0, value)
                       for txid, idx, value in self.mempool.unspent_outputs(hashX))
        return out

    # ---- outpoints ---------------------------------------------------------

    def outpoint_status(self, txid: bytes, out_idx: int) -> OutpointStatus:
        """The spend status of output `out_idx` of `txid` (internal byte order).

        From the index (its ``h`` row if unspent, its ``s`` row if spent: a few
        point reads, whatever the script's history), then the mempool for what
        the index lacks: an output of a mempool transaction, or a spend in the
        mempool.  A confirmed spend wins over a mempool one.  Outputs that can
        never be spent (OP_RETURN, the coin's unspendable scripts) are indexed
        nowhere, so they are UNKNOWN, like indexes past a transaction's last
        output.  No node call.  A txid or index of the wrong type is the caller's
        bug (the protocol layer validates a client's): TypeError.
        """
        if not isinstance(txid, bytes) or type(out_idx) is not int:
            raise TypeError("outpoint_status takes a txid as bytes and an index as an int")
        if len(txid) != 32 or not 0 <= out_idx <= 0xFFFFFFFF:
            return UNKNOWN
        prevout = txid + out_idx.to_bytes(4, "little")
        db, mempool = self.db, self.mempool
        confirmed = db.confirmed_outpoint(prevout)
        if confirmed is not None:
            funder_tx_num, hashX, spender_tx_num = confirmed
            funder_height = db.tx_height(funder_tx_num)
            if spender_tx_num is not None:
                return OutpointStatus(funder_height, hashX, db.tx_hash(spender_tx_num),
                                      db.tx_height(spender_tx_num))
        else:
            funding = mempool.funding(prevout) if mempool else None
            if funding is None:
                return UNKNOWN
            funder_height, hashX = funding
        spending = mempool.spending(prevout) if mempool else None
        if spending is None:
            return OutpointStatus(funder_height, hashX)
        spender_txid, spender_height = spending
        return OutpointStatus(funder_height, hashX, spender_txid, spender_height)

    def recent_mempool(self, count: int):
        """[(txid, fee, vsize)] of the last `count` transactions to enter the mempool
        (and still in it), newest first; O(count)."""
        return self.mempool.recent(count) if self.mempool else []

    # ---- transactions ----------------------------------------------------

    def block_txids(self, height: int):
        cached = self._merkle_trees.lookup(height)
        return cached.leaves() if cached is not None else self.db.block_txids(height)

    def _merkle_tree(self, height: int) -> MerkleTree:
        """The merkle tree of the block at `height`: cached for big blocks, whose trees
        cost most to hash and whose branches wallets ask for most."""
        if not 0 <= height <= self.db.height:
            raise ValueError(f"no block at height {height}")
        tree = self._merkle_trees.lookup(height)
        if tree is None:
            tree = MerkleTree(self.db.block_txids(height))
            if len(tree) >= self.MERKLE_CACHE_MIN_TXS:
                self._merkle_trees.store(height, tree)
        return tree

    def tx_merkle(self, txid: bytes, height: int):
        """(branch, position) of `txid` in the block at `height`; ValueError if absent."""
        tree = self._merkle_tree(height)
        try:
            pos = tree.index(txid)
        except ValueError:
            raise ValueError(f"tx {hash_to_hex_str(txid)} not in block at height "
                             f"{height}") from None
        return tree.branch(pos), pos

    def txid_at(self, height: int, pos: int, with_merkle: bool = False):
        """The txid at position `pos` of block `height`, and its branch if asked."""
        if not 0 <= height <= self.db.height:
            raise ValueError(f"no block at height {height}")
        if not with_merkle:
            txids = self.block_txids(height)
            if not 0 <= pos < len(txids):
                raise ValueError(f"no tx at position {pos} in block {height}")
            return txids[pos], None
        tree = self._merkle_tree(height)
        if not 0 <= pos < len(tree):
            raise ValueError(f"no tx at position {pos} in block {height}")
        return tree.leaf(pos), tree.branch(pos)

    def raw_transaction(self, txid_hex: str, verbose: bool = False):
        """A Deferred with the raw (or verbose) transaction, from the cache or the node,
        which needs no txindex (see `tx_fetch`)."""
        return defer.Deferred.fromCoroutine(self._tx_fetcher.fetch(txid_hex, verbose))

    def broadcast(self, raw_hex: str):
        """A Deferred with the txid of a transaction sent to the node."""
        return self.daemon.broadcast(raw_hex)

    def broadcast_package(self, raw_txs):
        """A Deferred with the node's `submitpackage` result for parents and child."""
        return self.daemon.submit_package(raw_txs)

    def test_mempool_accept(self, raw_txs):
        """A Deferred with the node's `testmempoolaccept` result list for raw hex txs."""
        return self.daemon.test_mempool_accept(raw_txs)

    # ---- fees and the node's state ---------------------------------------

    def fee_histogram(self):
        """The mempool's [[fee rate sat/vB, vsize], ...] with fee rates decreasing."""
        return self.mempool.fee_histogram() if self.mempool is not None else []

    def fee_estimate_target(self, number: int) -> int:
        """The confirmation target the node is asked for when a client asks `number`."""
        return self.coin.bucket_estimatefee_block_target(number)

    def estimatefee(self, number: int, mode=None):
        """A Deferred with the node's fee estimate in coin/kvB (-1 without one)."""
        return self.daemon.estimatefee(number, mode)

    def relayfee(self):
        """A Deferred with the node's minimum relay fee in coin/kvB."""
        return self.daemon.relayfee()

    def node_mempool_info(self):
        """A Deferred with the node's `getmempoolinfo` dict."""
        return self.daemon.mempool_info()

    def node_network_info(self):
        """A Deferred with the node's `getnetworkinfo` dict (its version, for the banner)."""
        return self.daemon.network_info()


def _tree_bytes(tree: MerkleTree) -> int:
    return tree.nbytes
