"""The regtest node's mempool: unconfirmed transactions in arrival order, with their fees.

Arrival order matters: a transaction always arrives after the parents it
spends, so a block taking the mempool in order is valid.  An index of who
spends each outpoint makes conflicts and descendants cheap to find, as
churn with thousands of transactions needs.
"""


class NodeMempool:
    """txid -> Tx in arrival order, with fees, arrival times and spent outpoints."""

    def __init__(self):
        self.txs = {}          # txid -> Tx
        self.fees = {}         # txid -> fee in satoshis
        self.times = {}        # txid -> arrival time (clock seconds)
        self.spenders = {}     # outpoint (36 bytes) -> txid spending it

    def __len__(self):
        return len(self.txs)

    def __iter__(self):
        return iter(self.txs)

    def __contains__(self, txid):
        return txid in self.txs

    def get(self, txid):
        return self.txs.get(txid)

    def values(self):
        return self.txs.values()

    def items(self):
        return self.txs.items()

    def add(self, tx, fee: int, when: float):
        txid = tx.txid
        self.txs[txid] = tx
        self.fees[txid] = fee
        self.times[txid] = when
        for txin in tx.inputs:
            self.spenders[txin.prevout] = txid

    def remove(self, txid):
        """Forget one transaction (its children stay: it was mined, say)."""
        tx = self.txs.pop(txid, None)
        if tx is None:
            return
        del self.fees[txid], self.times[txid]
        for txin in tx.inputs:
            if self.spenders.get(txin.prevout) == txid:
                del self.spenders[txin.prevout]

    def block_selection(self, max_txs=None):
        """Up to `max_txs` transactions (all by default) a block can hold, oldest first,
        each after every mempool parent it spends; and their total fee."""
        if max_txs is None or max_txs >= len(self.txs):
            chosen = [tx for _txid, tx in self._in_dependency_order()]
        else:
            chosen = []
            for _txid, tx in self._in_dependency_order():
                if len(chosen) >= max_txs:
                    break
                chosen.append(tx)
        return chosen, sum(self.fees[tx.txid] for tx in chosen)

    def _in_dependency_order(self):
        """(txid, tx) with every parent before its children (arrival order where it can)."""
        placed = set()
        waiting = {}                 # parent txid -> [(txid, tx)] held back for it

        def unplaced_parent(tx):
            for txin in tx.inputs:
                if txin.prev_hash in self.txs and txin.prev_hash not in placed:
                    return txin.prev_hash
            return None

        for item in self.txs.items():
            ready = [item]
            while ready:
                txid, tx = ready.pop()
                parent = unplaced_parent(tx)
                if parent is not None:
                    waiting.setdefault(parent, []).append((txid, tx))
                    continue
                placed.add(txid)
                yield txid, tx
                ready.extend(waiting.pop(txid, ()))

    def clear(self):
        self.txs.clear()
        self.fees.clear()
        self.times.clear()
        self.spenders.clear()

    def conflicts(self, tx):
        """The mempool transactions spending any input of `tx`."""
        spenders = self.spenders
        return {spenders[txin.prevout] for txin in tx.inputs if txin.prevout in spenders}

    def children(self, txid):
        tx = self.txs.get(txid)
        if tx is None:
            return []
        spenders = self.spenders
        found = (spenders.get(txid + idx.to_bytes(4, "little")) for idx in range(len(tx.outputs)))
        return [child for child in found if child is not None]

    def with_descendants(self, txids):
        """`txids` and everything in the mempool that spends from them, transitively."""
        found = set()
        todo = [t for t in txids if t in self.txs]
        while todo:
            txid = todo.pop()
            if txid not in found:
                found.add(txid)
                todo.extend(self.children(txid))
        return found

    def evict(self, txids):
        """Remove `txids` and their descendants; return the removed txids."""
        removed = self.with_descendants(txids)
        for txid in removed:
            self.remove(txid)
        return removed
