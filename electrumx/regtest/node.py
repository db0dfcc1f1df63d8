"""The regtest node's chain state: what a bitcoind would know, and the levers tests pull.

A node holds a pregenerated chain of which it shows a prefix (`reveal`
makes more "arrive"), mines new blocks from its mempool, reorganises its tip
onto another branch, and accepts or rejects transactions as bitcoind would
(inputs must exist and be unspent, outputs must not exceed inputs, a conflict
must pay more to replace).  Raw blocks are kept as bytes and served without
re-serialising.
"""

from electrumx.chain.block import Header, header_hash
from electrumx.chain.hashes import hash_to_hex_str, hex_str_to_hash
from electrumx.chain.script import p2pkh_script
from electrumx.chain.tx import (ParseError, Tx, TxInput, TxOutput, deserialize_block_txs,
                                parse_block_txs, parse_tx_for_index, read_varint)
from electrumx.regtest.chain import assemble_block, coinbase_tx, subsidy

MINER_SCRIPT = p2pkh_script(bytes(20))


class NodeError(Exception):
    """An RPC error with bitcoind's code and message."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message


class RegtestNode:
    """The chain, the mempool, and the control levers of the built-in node."""

    def __init__(self, blocks, reveal_height=None, clock=None):
        self.blocks = list(blocks)            # the whole pregenerated chain
        self.hashes = [header_hash(b) for b in self.blocks]
        self.height = len(self.blocks) - 1 if reveal_height is None else \
            min(reveal_height, len(self.blocks) - 1)
        self.height_of = {h: i for i, h in enumerate(self.hashes)}
        self.tx_index = {}                    # txid -> (height, offset, length)
        self._indexed_to = -1
        self.mempool = {}                     # txid -> Tx, in arrival order
        self.stale_blocks = {}                # hash -> raw, for blocks reorged away
        self.clock = clock
        self.block_waiters = []
        self._utxos = None                    # lazily built: outpoint -> (value, script)
        self._tag = 0

    # ---- chain reads -----------------------------------------------------

    @property
    def tip_hash(self) -> bytes:
        return self.hashes[self.height]

    def block_by_hash(self, block_hash: bytes):
        height = self.height_of.get(block_hash)
        if height is not None and height <= self.height:
            return self.blocks[height], height
        raw = self.stale_blocks.get(block_hash)
        if raw is not None:
            return raw, -1
        raise NodeError(-5, "Block not found")

    def confirmations(self, height):
        return self.height - height + 1 if height >= 0 else -1

    def _index_txs(self, up_to):
        """Extend the txid index over the revealed chain (incrementally)."""
        for height in range(self._indexed_to + 1, up_to + 1):
            raw = self.blocks[height]
            offsets = _tx_offsets(raw)
            for txid, (start, end) in zip((t[0] for t in parse_block_txs(raw)), offsets):
                self.tx_index[txid] = (height, start, end)
        self._indexed_to = max(self._indexed_to, up_to)

    def find_tx(self, txid: bytes):
        """(Tx raw bytes, height or None for the mempool); NodeError -5 if unknown."""
        tx = self.mempool.get(txid)
        if tx is not None:
            return tx.serialize(), None
        self._index_txs(self.height)
        found = self.tx_index.get(txid)
        if found is None or found[0] > self.height:
            raise NodeError(-5, "No such mempool or blockchain transaction. Use "
                                "gettransaction for wallet transactions.")
        height, start, end = found
        return self.blocks[height][start:end], height

    # ---- the UTXO view sendrawtransaction validates against --------------

    def _utxo_view(self):
        if self._utxos is None:
            utxos = {}
            for raw in self.blocks[1:self.height + 1]:
                self._apply_block_utxos(utxos, raw)
            self._utxos = utxos
        return self._utxos

    @staticmethod
    def _apply_block_utxos(utxos, raw):
        for txid, prevouts, outputs in parse_block_txs(raw):
            for prevout in prevouts:
                utxos.pop(prevout, None)
            for idx, (value, script) in enumerate(outputs):
                utxos[txid + idx.to_bytes(4, "little")] = (value, script)

    def unspent_outputs(self, max_height=None):
        """[(prevout, value, script)] confirmed at or below `max_height`, unspent anywhere."""
        max_height = self.height if max_height is None else max_height
        self._index_txs(self.height)
        spent_in_mempool = {i.prevout for tx in self.mempool.values() for i in tx.inputs}
        return [(prevout, value, script) for prevout, (value, script) in
                self._utxo_view().items()
                if prevout not in spent_in_mempool and value > 0
                and self.tx_index[prevout[:32]][0] <= max_height]

    def _spendable(self, prevout):
        """(value, script) of an output unspent in the chain, from the chain or the mempool."""
        found = self._utxo_view().get(prevout)
        if found is None:
            parent = self.mempool.get(prevout[:32])
            idx = int.from_bytes(prevout[32:], "little")
            if parent is not None and idx < len(parent.outputs):
                out = parent.outputs[idx]
                found = (out.value, out.script)
        return found

    def _mempool_spender(self, prevout):
        for txid, tx in self.mempool.items():
            if any(txin.prevout == prevout for txin in tx.inputs):
                return txid
        return None

    # ---- transactions ----------------------------------------------------

    def check_tx(self, raw: bytes):
        """Validate a raw tx against the chain and mempool; return (Tx, fee, conflicts)."""
        try:
            tx = Tx.from_bytes(raw)
        except ParseError:
            raise NodeError(-22, "TX decode failed") from None
        if tx.is_coinbase:
            raise NodeError(-26, "coinbase")
        if tx.txid in self.mempool:
            raise NodeError(-27, "Transaction already in mempool")
        total_in = 0
        conflicts = set()
        for txin in tx.inputs:
            found = self._spendable(txin.prevout)
            if found is None:
                raise NodeError(-25, "bad-txns-inputs-missingorspent")
            total_in += found[0]
            spender = self._mempool_spender(txin.prevout)
            if spender is not None:
                conflicts.add(spender)
        total_out = sum(o.value for o in tx.outputs)
        if any(o.value < 0 for o in tx.outputs) or total_out > total_in:
            raise NodeError(-26, "bad-txns-in-belowout")
        fee = total_in - total_out
        if conflicts:
            replaced_fee = sum(self.fee_of(t) for t in self._with_descendants(conflicts))
            if fee <= replaced_fee:
                raise NodeError(-26, "insufficient fee")
        return tx, fee, conflicts

    def fee_of(self, txid):
        tx = self.mempool[txid]
        total_in = sum(self._spendable(txin.prevout)[0] for txin in tx.inputs)
        return total_in - sum(o.value for o in tx.outputs)

    def send(self, raw: bytes) -> bytes:
        """sendrawtransaction: accept into the mempool (replacing conflicts) or raise."""
        tx, _fee, conflicts = self.check_tx(raw)
        for txid in self._with_descendants(conflicts):
            self.mempool.pop(txid, None)
        self.mempool[tx.txid] = tx
        return tx.txid

    def _with_descendants(self, txids):
        found = set(txids)
        changed = True
        while changed:
            changed = False
            for txid, tx in self.mempool.items():
                if txid not in found and any(i.prev_hash in found for i in tx.inputs):
                    found.add(txid)
                    changed = True
        return found

    def add_random_transactions(self, count: int, rng, chain_fraction: float = 0.3):
        """Add up to `count` valid transactions spending current outputs.

        About `chain_fraction` of them spend the output of a transaction added
        just before, making chains of unconfirmed transactions.  Returns their txids.
        """
        confirmed = [(p, v) for p, v, _s in self.unspent_outputs() if v > 2000]
        unconfirmed = []
        added = []
        while len(added) < count:
            source = unconfirmed if unconfirmed and rng.random() < chain_fraction \
                else confirmed
            if not source:
                break
            prevout, value = source.pop(rng.randrange(len(source)))
            fee = rng.randint(200, 1500)
            tx = Tx(2, [TxInput(prevout[:32], int.from_bytes(prevout[32:], "little"),
                                rng.randbytes(107), 0xFFFFFFFD)],
                    [TxOutput(value - fee, p2pkh_script(rng.randbytes(20)))], 0)
            added.append(self.send(tx.serialize()))
            if value - fee > 2000:
                unconfirmed.append((tx.txid + bytes(4), value - fee))
        return added

    def drop_from_mempool(self, txid: bytes):
        """Evict a transaction and its descendants."""
        for t in self._with_descendants({txid}):
            self.mempool.pop(t, None)

    # ---- blocks arriving -------------------------------------------------

    def reveal(self, height: int):
        """Show the pregenerated chain up to `height`."""
        height = min(height, len(self.blocks) - 1)
        if height > self.height:
            for raw in self.blocks[self.height + 1:height + 1]:
                self._connect(raw)
            self.height = height
            self._block_arrived()
        return self.height

    def _connect(self, raw):
        if self._utxos is not None:
            self._apply_block_utxos(self._utxos, raw)
        txs = parse_block_txs(raw)
        mined = {t[0] for t in txs}
        spent = {p for _t, prevouts, _o in txs for p in prevouts}
        for txid in list(self.mempool):
            tx = self.mempool.get(txid)
            if tx is None:
                continue
            if txid in mined:
                del self.mempool[txid]
            elif any(i.prevout in spent for i in tx.inputs):
                self.drop_from_mempool(txid)     # conflicted by the block

    def mine(self, count: int = 1, script: bytes = MINER_SCRIPT):
        """Mine `count` blocks on the shown tip, the first with the whole mempool."""
        new_hashes = []
        for _ in range(count):
            txs = list(self.mempool.values())
            raw = self._make_block(txs, script)
            self._append(raw)
            new_hashes.append(self.tip_hash)
        self._block_arrived()
        return new_hashes

    def _make_block(self, txs, script):
        height = self.height + 1
        fees = sum(self.fee_of(tx.txid) for tx in txs if tx.txid in self.mempool)
        self._tag += 1
        coinbase = coinbase_tx(height, [(subsidy(height) + fees, script)],
                               tag=self._tag.to_bytes(4, "little"))
        timestamp = Header(self.blocks[self.height]).timestamp + 1
        return assemble_block(self.tip_hash, timestamp, coinbase, txs)

    def _append(self, raw):
        """Put a new block on the shown tip, discarding pregenerated blocks above it."""
        del self.blocks[self.height + 1:]
        for stale in self.hashes[self.height + 1:]:
            self.height_of.pop(stale, None)
        del self.hashes[self.height + 1:]
        self._connect(raw)
        self.blocks.append(raw)
        block_hash = header_hash(raw)
        self.hashes.append(block_hash)
        self.height_of[block_hash] = len(self.blocks) - 1
        self.height += 1

    def reorg(self, depth: int, new_blocks: int = None, txs=()):
        """Replace the last `depth` blocks by `new_blocks` (default depth+1) others.

        Transactions of the disconnected blocks go back to the mempool unless
        they conflict with `txs` (raw transactions the new branch's first
        block confirms, for example double spends).
        """
        if not 0 < depth <= self.height:
            raise NodeError(-8, "invalid reorg depth")
        new_blocks = depth + 1 if new_blocks is None else new_blocks
        fork = self.height - depth
        disconnected = self.blocks[fork + 1:self.height + 1]
        for raw, block_hash in zip(disconnected, self.hashes[fork + 1:self.height + 1]):
            self.stale_blocks[block_hash] = raw
        self.height = fork
        self._utxos = None
        self.tx_index = {t: v for t, v in self.tx_index.items() if v[0] <= fork}
        self._indexed_to = min(self._indexed_to, fork)
        returned = [tx for raw in disconnected for tx in deserialize_block_txs(raw)[1:]]
        old_mempool = self.mempool
        self.mempool = {}
        chosen = [Tx.from_bytes(raw) for raw in txs]
        for tx in chosen:
            self.mempool[tx.txid] = tx
        first = self._make_block(chosen, MINER_SCRIPT)
        self.mempool = {}
        self._append(first)
        for _ in range(new_blocks - 1):
            self._append(self._make_block([], MINER_SCRIPT))
        for tx in returned + list(old_mempool.values()):
            try:
                self.send(tx.serialize())
            except NodeError:
                pass                 # conflicted by the new branch
        self._block_arrived()
        return fork

    def _block_arrived(self):
        waiters, self.block_waiters = self.block_waiters, []
        for d in waiters:
            if not d.called:
                d.callback({"hash": hash_to_hex_str(self.tip_hash), "height": self.height})

    # ---- lookups by display hex ------------------------------------------

    def height_of_hex(self, hex_hash: str):
        try:
            block_hash = hex_str_to_hash(hex_hash)
        except ValueError:
            raise NodeError(-8, "blockhash must be hexadecimal string") from None
        return self.block_by_hash(block_hash)


def _tx_offsets(raw_block):
    """(start, end) of each transaction in a raw block."""
    count, pos = read_varint(raw_block, 80)
    offsets = []
    for _ in range(count):
        _txid, _p, _o, end = parse_tx_for_index(raw_block, pos)
        offsets.append((pos, end))
        pos = end
    return offsets
