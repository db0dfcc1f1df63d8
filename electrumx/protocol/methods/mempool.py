"""The `mempool.*` methods: the fee histogram and the node's mempool fee floors."""

from electrumx.protocol import costs
from electrumx.protocol.methods.daemon import ask_daemon

MEMPOOL_INFO_KEYS = ("mempoolminfee", "minrelaytxfee", "incrementalrelayfee")


class MempoolMethods:
    """Handlers of `mempool.get_fee_histogram` and (protocol 1.6) `mempool.get_info`."""

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
