"""The `mempool.*` methods: the fee histogram, the node's mempool fee floors, and the
transactions that entered the mempool last."""

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.protocol import costs
from electrumx.protocol.methods.daemon import ask_daemon

MEMPOOL_INFO_KEYS = ("mempoolminfee", "minrelaytxfee", "incrementalrelayfee")
RECENT_COUNT = 10
"""Transactions `mempool.recent` lists (as ElectrumX 2.0 does)."""


class MempoolMethods:
    """Handlers of `mempool.get_fee_histogram`, (protocol 1.6) `mempool.get_info` and
    (protocol 1.7) `mempool.recent`."""

    def __init__(self, reader):
        self.reader = reader

    def get_fee_histogram(self, session):
        """[[fee rate sat/vB, vsize], ...] with fee rates decreasing."""
        session.bump_cost(costs.FEE_HISTOGRAM)
        return self.reader.fee_histogram()

    async def get_info(self, session):
        """The node's fee floors in coin/kvB, from getmempoolinfo."""
        session.bump_cost(costs.MEMPOOL_INFO)
        info = await ask_daemon(self.reader.node_mempool_info())
        return {key: info[key] for key in MEMPOOL_INFO_KEYS if key in info}

    def recent(self, session):
        """The last RECENT_COUNT transactions to enter the mempool, newest first, as
        {txid, fee (sats), vsize}."""
        session.bump_cost(costs.MEMPOOL_RECENT)
        return [{"txid": hash_to_hex_str(txid), "fee": fee, "vsize": vsize}
                for txid, fee, vsize in self.reader.recent_mempool(RECENT_COUNT)]
