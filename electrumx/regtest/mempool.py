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
