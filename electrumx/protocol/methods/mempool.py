"""The `mempool.*` methods: the fee histogram and the node's mempool fee floors."""

from electrumx.protocol.methods.daemon import ask_daemon

MEMPOOL_INFO_KEYS = ("mempoolminfee", "minrelaytxfee", "incrementalrelayfee")


class MempoolMethods:
    """Handlers of `mempool.get_fee_histogram` and (protocol 1.6) `mempool.get_info`."""

    def __init__(self, reader):
        self.reader = reader

    def get_fee_histogram(self, session):
        """[[fee rate sat/vB, vsize], ...] with fee rates decreasing."""
        session.bump_cost(1.0)
        mempool = self.reader.mempool
        return mempool.fee_histogram() if mempool is not None else []

    async def get_info(self, session):
        """The node's fee floors in coin/kvB, from getmempoolinfo."""
        session.bump_cost(1.0)
        info = await ask_daemon(self.reader.daemon.mempool_info())
        return {key: info[key] for key in MEMPOOL_INFO_KEYS if key in info}
