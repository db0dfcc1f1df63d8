"""What the node announces as its chain and mempool change (bitcoind's ZMQ events).

The node calls these at every change a bitcoind would publish; this base
class does nothing, so a node without publisher pays nothing.
`zmq_pub.ZmqPublisher` sends them as bitcoind does.
"""


class Announcer:
    """The events, in the order bitcoind signals them; every method a no-op here."""

    def tx_added(self, txid: bytes, raw: bytes):
        """A transaction entered the mempool."""

    def txs_removed(self, txids):
        """Transactions left the mempool other than by being mined (replaced, conflicted
        by a block, evicted)."""

    def block_connected(self, raw_block: bytes):
        """A block joined the best chain (its transactions are confirmed)."""

    def block_disconnected(self, block_hash: bytes):
        """The best chain's tip block left it (a reorg)."""

    def restarted(self):
        """The node restarted: a publisher's counters begin again at 0."""

    def notifications(self) -> list:
        """getzmqnotifications' answer: [{type, address, hwm}]."""
        return []
