"""The regtest node's chain state: what a bitcoind would know, and the levers tests pull.

A node holds a pregenerated chain of which it shows a prefix (`reveal`
makes more "arrive"), mines new blocks from its mempool, reorganises its tip
onto another branch, and accepts or rejects transactions as bitcoind would
(inputs must exist and be unspent, outputs must not exceed inputs, the fee
must meet the relay minimum, and a conflict must pay more to replace).  Raw
blocks are served as they are, without re-serialising: the pregenerated ones
read from the cache's file when asked for (chainblocks.ChainBlocks), so the
node's memory follows the block count, not the chain's bytes.
"""

import random

from electrumx.chain.block import Header, header_hash
from electrumx.chain.hashes import hash_to_hex_str, hex_str_to_hash
from electrumx.chain.script import p2pkh_script
from electrumx.chain.tx import (ParseError, Tx, deserialize_block_txs, parse_tx_for_index,
                                read_varint)
from electrumx.index.lru import LRU
from electrumx.regtest.codes import (RPC_DESERIALIZATION_ERROR, RPC_INVALID_ADDRESS_OR_KEY,
                                     RPC_INVALID_PARAMETER, RPC_VERIFY_ALREADY_IN_UTXO_SET,
                                     RPC_VERIFY_ERROR, RPC_VERIFY_REJECTED)
from electrumx.regtest.announce import Announcer
from electrumx.regtest.chain import assemble_block, coinbase_tx, subsidy
from electrumx.regtest.chainblocks import BlockTxs, ChainBlocks
from electrumx.regtest.mempool import NodeMempool
from electrumx.regtest.txindex import TxIndex
from electrumx.regtest import txmaker

MINER_SCRIPT = p2pkh_script(bytes(20))
MIN_RELAY_FEERATE = 1            # satoshis per virtual byte, bitcoind's default
MISSING_INPUTS = "bad-txns-inputs-missingorspent"
NOT_FOUND_TX = ("No such mempool or blockchain transaction. Use gettransaction for "
                "wallet transactions.")
NOT_FOUND_NO_TXINDEX = ("No such mempool transaction. Use -txindex or provide a block hash to "
                        "enable blockchain transaction queries. Use gettransaction for wallet "
                        "transactions.")


class NodeError(Exception):
    """An RPC error with bitcoind's code and message.

    `reason` is a refused transaction's short reject reason, where the
    message adds details ("min relay fee not met" of "min relay fee not met,
    90 < 110"), as testmempoolaccept reports both.
    """

    def __init__(self, code: int, message: str, reason: str = None):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.reason = reason or message


class RegtestNode:
    """The chain, the UTXO set, the mempool, and the control levers of the built-in node.

    `blocks` is the whole pregenerated chain (raw blocks, genesis first: a
    cache entry's BlockFile, a list, or ChainBlocks); the node shows it up to
    `reveal_height` (default: all of it).  `clock` gives
    mempool arrival times; `seed` makes the levers' random choices repeatable.
    """

    def __init__(self, blocks, reveal_height=None, clock=None, seed=0, txindex=False,
                 block_hash_arg=True):
        self.blocks = blocks if isinstance(blocks, ChainBlocks) else ChainBlocks(blocks)
        self.hashes = [header_hash(self.blocks.header(h)) for h in range(len(self.blocks))]
        self.height_of = {h: i for i, h in enumerate(self.hashes)}
        last = len(self.blocks) - 1
        self.height = last if reveal_height is None else max(0, min(reveal_height, last))
        self.mempool = NodeMempool()
        self.stale_blocks = {}         # hash -> raw, for blocks reorganised away
        self.block_waiters = []        # Deferreds fired with {hash, height} on a new tip
        self.clock = clock
        self.rng = random.Random(seed)
        self._tx_index = TxIndex()     # of the shown chain's first blocks, built when asked
        self._spenders = None          # outpoint -> spending txid, built when first asked
        self._block_txs = LRU(256)     # block hash -> BlockTxs
        self._utxos = None             # outpoint -> (value, script, height), built lazily
        self._coinbase_tag = 0
        self.txindex = txindex
        """As bitcoind's txindex=1: getrawtransaction finds confirmed transactions without
        a block hash.  Off by default, as in bitcoind."""
        self.block_hash_arg = block_hash_arg
        """getrawtransaction takes a block hash; False refuses it, as older nodes do
        (Bitcoin SV before it took one)."""
        self.announcer = Announcer()
        """Told of every change bitcoind publishes over ZMQ (a ZmqPublisher, if any)."""

    # ---- chain reads -----------------------------------------------------

    @property
    def tip_hash(self) -> bytes:
        return self.hashes[self.height]

    def header(self, height: int) -> Header:
        return Header(self.blocks.header(height))

    def block_by_hash(self, block_hash: bytes):
        """(raw block, height) of a shown block, or height -1 for a stale one."""
        height = self.height_of.get(block_hash)
        if height is not None and height <= self.height:
            return self.blocks[height], height
        raw = self.stale_blocks.get(block_hash)
        if raw is not None:
            return raw, -1
        raise NodeError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")

    def block_by_hex(self, hex_hash: str):
        """block_by_hash for a display-hex hash, with bitcoind's error for bad hex."""
        return self.block_by_hash(_hash_param(hex_hash))

    def tx_in_block_hex(self, txid: bytes, hex_hash: str):
        """(raw tx, height) of a transaction of the block given by its display-hex hash
        (getrawtransaction's block hash argument): tx_in_block, without reading the
        whole block but to find where its transactions lie."""
        block_hash = _hash_param(hex_hash)
        height = self.height_of.get(block_hash)
        if height is None or height > self.height:
            if block_hash not in self.stale_blocks:
                raise NodeError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            height = -1
        return self.tx_in_block(txid, block_hash, height), height

    def confirmations(self, height: int) -> int:
        return self.height - height + 1 if height >= 0 else -1

    def find_tx(self, txid: bytes):
        """(raw tx, height, or None for the mempool); NodeError -5 if unknown."""
        tx = self.mempool.get(txid)
        if tx is not None:
            return tx.serialize(), None
        found = self._confirmed(txid)
        if found is None:
            raise NodeError(RPC_INVALID_ADDRESS_OR_KEY, NOT_FOUND_TX)
        height, start, end = found
        return self.blocks.read(height, start, end), height

    def tx_in_block(self, txid: bytes, block_hash: bytes, height: int) -> bytes:
        """A transaction of the block `block_hash` at `height` (-1: a stale block);
        NodeError -5 if the block does not hold it.

        bitcoind reads the block and scans it in C++, a few milliseconds.  This
        Python node takes its own index of the chain if a lookup without block
        hash has built it, or else parses a block's transaction positions once and
        keeps them (compactly, BlockTxs) for the last few hundred blocks asked
        about, so that a bench on blocks of thousands of transactions measures
        the server, not the node; then only the transaction's bytes are read.
        """
        if 0 <= height < len(self._tx_index):      # the chain's index is built to there
            found = self._tx_index.get(txid, self._txid_at)
            if found is not None and found[0] == height:
                return self.blocks.read(height, found[1], found[2])
        stale = self.stale_blocks.get(block_hash) if height < 0 else None
        positions = self._block_txs.lookup(block_hash)
        if positions is None:
            positions = BlockTxs(stale or self.blocks[height])
            self._block_txs.store(block_hash, positions)
        found = positions.find(txid)
        if found is None:
            raise NodeError(RPC_INVALID_ADDRESS_OR_KEY,
                            "No such transaction found in the provided block. Use "
                            "gettransaction for wallet transactions.")
        start, end = found
        return stale[start:end] if stale else self.blocks.read(height, start, end)

    def _confirmed(self, txid):
        """(height, start, end) of a transaction of the shown chain, or None."""
        self._index_txs()
        return self._tx_index.get(txid, self._txid_at)

    def _txid_at(self, height, start, end) -> bytes:
        return parse_tx_for_index(self.blocks.read(height, start, end), 0)[0]

    def _index_txs(self):
        """Extend bitcoind's txindex over the shown chain, incrementally."""
        for height in range(len(self._tx_index), self.height + 1):
            self._index_block(_block_txs(self.blocks[height]))

    def _index_block(self, txs):
        """Index the next block's [(txid, start, end, prevouts, outputs)]."""
        self._tx_index.add_block([t[:3] for t in txs])

    def _spender_index(self):
        """bitcoind's txospenderindex over the shown chain: outpoint -> spending txid.

        Built when gettxspendingprevout first asks, then kept up as blocks come
        and go.  A dict of an entry per input: only that RPC needs it, and a
        server syncing through the node never asks.
        """
        if self._spenders is None:
            self._spenders = {}
            for height in range(1, self.height + 1):
                self._add_spends(_block_txs(self.blocks[height]))
        return self._spenders

    def _add_spends(self, txs):
        """A block's spends; a coinbase spends nothing, so it has no entry as a spender."""
        for txid, _start, _end, prevouts, _outputs in txs[1:]:
            self._spenders.update((prevout, txid) for prevout in prevouts)

    def _remove_spends(self, txs):
        for txid, _start, _end, prevouts, _outputs in txs:
            for prevout in prevouts:
                if self._spenders.get(prevout) == txid:
                    del self._spenders[prevout]

    def spender(self, outpoint: bytes, mempool_only: bool = False):
        """(txid, raw tx, block hash or None) of the transaction spending `outpoint`, or None.

        As bitcoind 31's gettxspendingprevout with txospenderindex: a mempool
        spender first, else (unless `mempool_only`) the shown chain's.
        """
        txid = self.mempool.spenders.get(outpoint)
        if txid is not None:
            return txid, self.mempool.get(txid).serialize(), None
        if mempool_only:
            return None
        txid = self._spender_index().get(outpoint)
        if txid is None:
            return None
        height, start, end = self._confirmed(txid)
        return txid, self.blocks.read(height, start, end), self.hashes[height]

    # ---- the UTXO set ------------------------------------------------------

    def _utxo_view(self):
        if self._utxos is None:
            self._utxos = {}
            for height in range(1, self.height + 1):
                self._connect_utxos(self.blocks[height], height)
        return self._utxos

    def _connect_utxos(self, raw, height):
        utxos = self._utxos
        for txid, _start, _end, prevouts, outputs in _block_txs(raw):
            for prevout in prevouts:
                utxos.pop(prevout, None)
            for idx, (value, script) in enumerate(outputs):
                utxos[txid + idx.to_bytes(4, "little")] = (value, script, height)

    def _disconnect_utxos(self, raw):
        """Undo a block on the UTXO set: its outputs go, the outputs it spent return."""
        utxos = self._utxos
        txs = _block_txs(raw)
        created_here = {t[0] for t in txs}
        for txid, _start, _end, prevouts, outputs in reversed(txs):
            for idx in range(len(outputs)):
                utxos.pop(txid + idx.to_bytes(4, "little"), None)
            for prevout in prevouts:
                if prevout[:32] not in created_here:
                    utxos[prevout] = self._output_of(prevout)

    def _output_of(self, prevout):
        """(value, script, height) of a confirmed output, spent or not."""
        height, start, end = self._confirmed(prevout[:32])
        outputs = parse_tx_for_index(self.blocks.read(height, start, end), 0)[2]
        value, script = outputs[int.from_bytes(prevout[32:], "little")]
        return value, script, height

    def unspent_outputs(self, max_height=None):
        """[(outpoint, value, script)] confirmed at or below `max_height`, unspent anywhere."""
        max_height = self.height if max_height is None else max_height
        spent = self.mempool.spenders
        return [(outpoint, value, script)
                for outpoint, (value, script, height) in self._utxo_view().items()
                if value > 0 and height <= max_height and outpoint not in spent]

    def _spendable(self, outpoint):
        """(value, script) of an output unspent in the chain, from the chain or the mempool."""
        found = self._utxo_view().get(outpoint)
        if found is not None:
            return found[:2]
        parent = self.mempool.get(outpoint[:32])
        idx = int.from_bytes(outpoint[32:], "little")
        if parent is not None and idx < len(parent.outputs):
            out = parent.outputs[idx]
            return out.value, out.script
        return None

    # ---- accepting transactions ----------------------------------------------

    def check_tx(self, raw: bytes, bypass_limits: bool = False):
        """Validate a raw tx against the chain and mempool; return (Tx, fee, replaced txids).

        `bypass_limits` skips the relay fee floor, as bitcoind does for
        transactions returning from disconnected blocks.
        """
        try:
            tx = Tx.from_bytes(raw)
        except ParseError:
            raise NodeError(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None
        if not tx.inputs:
            raise NodeError(RPC_VERIFY_REJECTED, "bad-txns-vin-empty")
        if not tx.outputs:
            raise NodeError(RPC_VERIFY_REJECTED, "bad-txns-vout-empty")
        if tx.is_coinbase:
            raise NodeError(RPC_VERIFY_REJECTED, "coinbase")
        if self._confirmed(tx.txid) is not None:
            raise NodeError(RPC_VERIFY_ALREADY_IN_UTXO_SET,
                            "Transaction outputs already in utxo set")
        outpoints = [txin.prevout for txin in tx.inputs]
        if len(set(outpoints)) != len(outpoints):
            raise NodeError(RPC_VERIFY_REJECTED, "bad-txns-inputs-duplicate")
        total_in = 0
        for outpoint in outpoints:
            found = self._spendable(outpoint)
            if found is None:
                raise NodeError(RPC_VERIFY_ERROR, MISSING_INPUTS)
            total_in += found[0]
        total_out = sum(o.value for o in tx.outputs)
        if any(o.value < 0 for o in tx.outputs) or total_out > total_in:
            raise NodeError(RPC_VERIFY_REJECTED, "bad-txns-in-belowout")
        fee = total_in - total_out
        if not bypass_limits and fee < MIN_RELAY_FEERATE * tx.vsize:
            raise NodeError(RPC_VERIFY_REJECTED, f"min relay fee not met, {fee} < {tx.vsize}",
                            "min relay fee not met")
        replaced = self.mempool.with_descendants(self.mempool.conflicts(tx))
        if replaced:
            if any(txin.prev_hash in replaced for txin in tx.inputs):
                raise NodeError(RPC_VERIFY_REJECTED, "bad-txns-spends-conflicting-tx")
            # Full RBF: the replacement must pay more than all it evicts, plus its own relay.
            replaced_fees = sum(self.mempool.fees[t] for t in replaced)
            if fee < replaced_fees + MIN_RELAY_FEERATE * tx.vsize:
                raise NodeError(RPC_VERIFY_REJECTED, "txn-mempool-conflict")
        return tx, fee, replaced

    def send(self, raw: bytes, bypass_limits: bool = False) -> bytes:
        """sendrawtransaction: accept into the mempool (replacing conflicts) or raise NodeError.

        A transaction already in the mempool is accepted again, as bitcoind does.
        """
        try:
            tx = Tx.from_bytes(raw)
        except ParseError:
            raise NodeError(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None
        if tx.txid in self.mempool:
            return tx.txid
        tx, removed = self._admit(raw, bypass_limits)
        self.announcer.txs_removed(removed)
        self.announcer.tx_added(tx.txid, raw)
        return tx.txid

    def _admit(self, raw, bypass_limits):
        """Check and add a transaction, evicting what it replaces; (Tx, evicted txids)."""
        tx, fee, replaced = self.check_tx(raw, bypass_limits)
        removed = self.mempool.evict(replaced)
        self.mempool.add(tx, fee, self.clock.seconds() if self.clock else 0.0)
        return tx, removed

    def fee_of(self, txid: bytes) -> int:
        return self.mempool.fees[txid]

    def drop_from_mempool(self, txid: bytes):
        """Evict a transaction and its descendants (as if the network forgot them)."""
        removed = self.mempool.evict({txid})
        self.announcer.txs_removed(removed)
        return removed

    def add_random_transactions(self, count: int, rng=None, chain_fraction: float = 0.3):
        """Add up to `count` valid transactions spending current outputs; return their txids.

        About `chain_fraction` of them spend an output of one added just
        before, making chains of unconfirmed transactions.
        """
        rng = rng or self.rng
        confirmed = [(o, v, s) for o, v, s in self.unspent_outputs() if v > 10_000]
        unconfirmed = []
        added = []
        while len(added) < count:
            source = unconfirmed if unconfirmed and rng.random() < chain_fraction \
                else confirmed
            if not source:
                break
            outpoint, value, script = source.pop(rng.randrange(len(source)))
            try:
                tx = txmaker.payment([(outpoint, value, script)], rng)
            except ValueError:
                continue                # too small for the fee rate drawn: leave it be
            added.append(self.send(tx.serialize()))
            unconfirmed.extend((tx.txid + idx.to_bytes(4, "little"), out.value, out.script)
                               for idx, out in enumerate(tx.outputs) if out.value > 10_000)
        return added

    def replace_transaction(self, txid: bytes, fee_bump: int = 1000, rng=None) -> bytes:
        """Send an RBF replacement of a mempool tx (same inputs, a new payee); return its txid.

        The replacement evicts the tx and its descendants, so it pays their fees
        plus `fee_bump`, or plus its own relay fee if that is more (the rule
        check_tx enforces).  NodeError -26 if the inputs cannot pay that much.
        """
        tx = self.mempool.get(txid)
        if tx is None:
            raise NodeError(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
        spent = [(i.prevout, *self._spendable(i.prevout)) for i in tx.inputs]
        replaced_fees = sum(self.mempool.fees[t] for t in self.mempool.with_descendants({txid}))
        try:
            replacement = txmaker.payment(spent, rng or self.rng, outputs=1, min_fee=fee_bump,
                                          feerate=MIN_RELAY_FEERATE, extra_fee=replaced_fees)
        except ValueError:
            raise NodeError(RPC_VERIFY_REJECTED, "insufficient fee") from None
        return self.send(replacement.serialize())

    # ---- blocks arriving ---------------------------------------------------

    def reveal(self, height: int) -> int:
        """Show the pregenerated chain up to `height`; return the shown height."""
        height = min(height, len(self.blocks) - 1)
        if height > self.height:
            for h in range(self.height + 1, height + 1):
                self._connect_announced(self.blocks[h], h)
            self.height = height
            self.notify_waiters()
        return self.height

    def rewind(self, height: int) -> int:
        """Hide the shown blocks above `height`; return the shown height.

        This is a node that restarted without its last blocks, or (at 0) one
        reindexing from genesis: the hidden blocks are not stale, just unknown
        (`getblockheader` answers -5) until `reveal` shows them again.  The
        mempool is emptied, as by a restart without mempool.dat.
        """
        if isinstance(height, bool) or not isinstance(height, int) or height < 0:
            raise NodeError(RPC_INVALID_PARAMETER, "height must be a non-negative integer")
        if height < self.height:
            self.height = height
            self._utxos = None              # all rebuilt lazily from the shown chain
            self._tx_index = TxIndex()
            self._spenders = None
            self.mempool.clear()
            self.announcer.restarted()
            self.notify_waiters()
        return self.height

    def mine(self, count: int = 1, script: bytes = MINER_SCRIPT, random_txs: int = 0,
             rng=None, max_txs=None):
        """Mine `count` blocks on the shown tip, each taking the whole mempool, or its
        oldest `max_txs` transactions (parents before children).

        With `random_txs`, that many random valid transactions join the mempool
        before each block.  Pregenerated blocks above the tip are discarded.
        Returns the new block hashes.
        """
        new_hashes = []
        for _ in range(count):
            if random_txs:
                self.add_random_transactions(random_txs, rng)
            txs, fees = self.mempool.block_selection(max_txs)
            self._append(self._make_block(txs, fees, script), announce=True)
            new_hashes.append(self.tip_hash)
        self.notify_waiters()
        return new_hashes

    def reorg(self, depth: int, new_blocks: int = None, txs=(), double_spends: int = 0,
              rng=None) -> int:
        """Replace the last `depth` blocks by `new_blocks` (default depth + 1) others.

        The new branch's first block confirms `txs` (raw transactions, for
        example double spends chosen by the test) and `double_spends`
        transactions the node makes, each spending an input of a different
        mempool (or disconnected) transaction.  Then, as bitcoind does,
        transactions of the disconnected blocks and the old mempool return to
        the mempool unless the new branch conflicts with them.  Returns the
        fork height.

        So `txs` can un-spend and un-fund outputs: a transaction of theirs that
        spends an input of an old-branch transaction T evicts T and its
        descendants, whose outputs then never existed, and whose other inputs
        are unspent again.
        """
        if not isinstance(depth, int) or not 0 < depth <= self.height:
            raise NodeError(RPC_INVALID_PARAMETER, "invalid reorg depth")
        new_blocks = depth + 1 if new_blocks is None else new_blocks
        if new_blocks < 1:
            raise NodeError(RPC_INVALID_PARAMETER, "a reorg needs at least one new block")
        try:
            chosen = [Tx.from_bytes(raw) for raw in txs]
        except ParseError:
            raise NodeError(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None
        fork = self.height - depth
        self._index_txs()
        self._utxo_view()
        disconnected = list(zip(range(fork + 1, self.height + 1),
                                self.blocks[fork + 1:self.height + 1]))
        for height, raw in reversed(disconnected):
            self._disconnect(raw)
        self.height = fork
        returned = [tx for _h, raw in disconnected for tx in deserialize_block_txs(raw)[1:]]
        old_pool = list(self.mempool.values())
        chosen += txmaker.double_spends(returned + old_pool, double_spends, self._utxo_view(),
                                        rng or self.rng,
                                        taken={i.prevout for t in chosen for i in t.inputs})
        try:
            fees = self._fees_of_new_txs(chosen)
        except NodeError:
            for height, raw in disconnected:     # put the old branch back as it was
                self._connect(raw, height)
            self.height = disconnected[-1][0]
            raise
        for height, raw in disconnected:
            self.stale_blocks[self.hashes[height]] = raw
        self.mempool.clear()
        self._append(self._make_block(chosen, fees, MINER_SCRIPT))
        for _ in range(new_blocks - 1):
            self._append(self._make_block([], 0, MINER_SCRIPT))
        for tx in returned + old_pool:
            if tx.txid not in self.mempool:
                try:
                    self._admit(tx.serialize(), bypass_limits=True)
                except NodeError:
                    pass                 # conflicted or confirmed by the new branch
        self._announce_reorg(disconnected, fork, old_pool)
        self.notify_waiters()
        return fork

    def _announce_reorg(self, disconnected, fork, old_pool):
        """What bitcoind publishes for a reorg: the old blocks disconnected (tip first),
        the new connected, the old mempool's transactions gone other than into the new
        branch removed, and the old blocks' transactions back in the mempool added."""
        announcer = self.announcer
        for _height, raw in reversed(disconnected):
            announcer.block_disconnected(header_hash(raw))
        for height in range(fork + 1, self.height + 1):
            announcer.block_connected(self.blocks[height])
        self._index_txs()
        announcer.txs_removed(tx.txid for tx in old_pool if tx.txid not in self.mempool
                              and self._confirmed(tx.txid) is None)
        was_pending = {tx.txid for tx in old_pool}
        for txid, tx in self.mempool.items():
            if txid not in was_pending:
                announcer.tx_added(txid, tx.serialize())

    def _fees_of_new_txs(self, txs):
        """Total fee of transactions confirmed in order on the shown tip; NodeError if invalid."""
        view = self._utxo_view()
        created = {}
        spent = set()
        total = 0
        for tx in txs:
            value_in = 0
            for txin in tx.inputs:
                found = created.pop(txin.prevout, None) or view.get(txin.prevout)
                if found is None or txin.prevout in spent:
                    raise NodeError(RPC_VERIFY_ERROR, MISSING_INPUTS)
                spent.add(txin.prevout)
                value_in += found[0]
            value_out = sum(o.value for o in tx.outputs)
            if value_out > value_in:
                raise NodeError(RPC_VERIFY_REJECTED, "bad-txns-in-belowout")
            total += value_in - value_out
            created.update((tx.txid + idx.to_bytes(4, "little"), (o.value, o.script))
                           for idx, o in enumerate(tx.outputs))
        return total

    def _make_block(self, txs, fees, script):
        height = self.height + 1
        self._coinbase_tag += 1
        coinbase = coinbase_tx(height, [(subsidy(height) + fees, script)],
                               tag=self._coinbase_tag.to_bytes(4, "little"))
        timestamp = self.header(self.height).timestamp + 1
        return assemble_block(self.tip_hash, timestamp, coinbase, txs)

    def _append(self, raw, announce=False):
        """Put a new block on the shown tip, discarding pregenerated blocks above it."""
        for stale in self.hashes[self.height + 1:]:
            self.height_of.pop(stale, None)
        self.blocks.truncate(self.height + 1)
        del self.hashes[self.height + 1:]
        block_hash = header_hash(raw)
        self.blocks.append(raw)
        self.hashes.append(block_hash)
        self.height_of[block_hash] = len(self.blocks) - 1
        self.height += 1
        if announce:
            self._connect_announced(raw, self.height)
        else:
            self._connect(raw, self.height)

    def _connect_announced(self, raw, height):
        """_connect, and publish what bitcoind would: the conflicts it evicted, the block."""
        self.announcer.txs_removed(self._connect(raw, height))
        self.announcer.block_connected(raw)

    def _connect(self, raw, height):
        """A block joins the shown chain: UTXOs, txid index, and mempool follow.  Returns
        the mempool transactions it evicted as conflicts."""
        if self._utxos is not None:
            self._connect_utxos(raw, height)
        index_it = len(self._tx_index) == height
        if not index_it and self._spenders is None and not self.mempool:
            return set()
        txs = _block_txs(raw)
        if index_it:
            self._index_block(txs)
        if self._spenders is not None:
            self._add_spends(txs)
        mempool = self.mempool
        for txid, _start, _end, prevouts, _outputs in txs:
            mempool.remove(txid)
        conflicted = {mempool.spenders[p] for t in txs for p in t[3] if p in mempool.spenders}
        return mempool.evict(conflicted)

    def _disconnect(self, raw):
        """The shown tip block leaves the chain (its txs are dealt with by the caller)."""
        self._disconnect_utxos(raw)
        self._tx_index.truncate(self.height)
        if self._spenders is not None:
            self._remove_spends(_block_txs(raw))
        self.height -= 1

    def notify_waiters(self):
        """Answer every waitfornewblock long-poll with the current tip."""
        waiters, self.block_waiters = self.block_waiters, []
        tip = {"hash": hash_to_hex_str(self.tip_hash), "height": self.height}
        for d in waiters:
            if not d.called:
                d.callback(tip)


def _hash_param(hex_hash) -> bytes:
    """A block hash from its display hex, or bitcoind's error."""
    if not isinstance(hex_hash, str) or len(hex_hash) != 64:
        raise NodeError(RPC_INVALID_PARAMETER, "blockhash must be of length 64")
    try:
        return hex_str_to_hash(hex_hash)
    except ValueError:
        raise NodeError(RPC_INVALID_PARAMETER, "blockhash must be hexadecimal string") from None


def _block_txs(raw_block):
    """[(txid, start, end, prevouts, outputs)] of a raw block, in block order."""
    count, pos = read_varint(raw_block, 80)
    txs = []
    for _ in range(count):
        txid, prevouts, outputs, end = parse_tx_for_index(raw_block, pos)
        txs.append((txid, pos, end, prevouts, outputs))
        pos = end
    return txs
