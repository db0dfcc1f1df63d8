"""The `regtest_*` control RPCs: how a test or benchmark plays the network over HTTP.

They pull the same levers as the RegtestNode's Python methods, and they
keep answering while a failure mode (other than refusing connections) is
on, so a test can always heal the node it broke.
"""

import random

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.coins import BitcoinRegtest
from electrumx.regtest.codes import RPC_INVALID_ADDRESS_OR_KEY, RPC_INVALID_PARAMETER
from electrumx.regtest.node import MINER_SCRIPT, NodeError
from electrumx.regtest.rpc_methods import int_param, raw_tx_param, txid_param

FAILURE_MODES = ("refuse", "warmup", "http500", "corrupt", "misshapen", "slow")
PREFIX = "regtest_"


class ControlMethods:
    """regtest_reveal, _rewind, _mine, _reorg, _churn, _replace, _drop, _fail, _zmq_drop
    and _status.

    `fail(mode, seconds, delay)` is the running node's failure switch.
    """

    def __init__(self, node, fail):
        self.node = node
        self._fail = fail

    def regtest_reveal(self, height):
        """Show the pregenerated chain up to `height`; returns the shown height."""
        return self.node.reveal(int_param(height, "height"))

    def regtest_rewind(self, height):
        """Hide the blocks above `height`, as a node restarted without them would
        (0: reindexing from genesis); regtest_reveal shows them again.  Returns the
        shown height."""
        return self.node.rewind(int_param(height, "height"))

    def regtest_mine(self, count=1, random_txs=0, address=None, max_txs=None):
        """Mine `count` blocks from the mempool (plus `random_txs` new ones before each),
        each with at most `max_txs` of its oldest transactions if given."""
        script = MINER_SCRIPT
        if address is not None:
            try:
                script = BitcoinRegtest.address_to_script(address)
            except (TypeError, ValueError):
                raise NodeError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
        if max_txs is not None:
            max_txs = int_param(max_txs, "max_txs")
        hashes = self.node.mine(int_param(count, "count"), script,
                                int_param(random_txs, "random_txs"), max_txs=max_txs)
        return [hash_to_hex_str(h) for h in hashes]

    def regtest_reorg(self, depth, new_blocks=None, rawtxs=(), double_spends=0):
        """Replace the last `depth` blocks; returns the fork height.

        The new branch has `new_blocks` blocks (default depth + 1); its first
        confirms `rawtxs` and `double_spends` node-made conflicts of mempool txs.
        """
        if new_blocks is not None:
            int_param(new_blocks, "new_blocks")
        return self.node.reorg(int_param(depth, "depth"), new_blocks,
                               [raw_tx_param(r) for r in rawtxs],
                               int_param(double_spends, "double_spends"))

    def regtest_churn(self, count, seed=None, chain_fraction=0.3):
        """Add `count` random valid mempool txs, about `chain_fraction` of them spending
        an output of the one before (unconfirmed chains); their txids."""
        rng = random.Random(seed) if seed is not None else None
        if isinstance(chain_fraction, bool) or not isinstance(chain_fraction, (int, float)) \
                or not 0 <= chain_fraction < 1:
            raise NodeError(RPC_INVALID_PARAMETER,
                            "chain_fraction must be a number from 0 to below 1")
        txids = self.node.add_random_transactions(int_param(count, "count"), rng,
                                                  chain_fraction)
        return [hash_to_hex_str(t) for t in txids]

    def regtest_replace(self, txid, fee_bump=1000):
        """RBF-replace a mempool tx: a spend of all its inputs to a new payee, paying what
        it and its descendants (all evicted) paid plus `fee_bump` (at least the replacement's
        own relay fee); the new txid."""
        if int_param(fee_bump, "fee_bump") < 0:
            raise NodeError(RPC_INVALID_PARAMETER, "fee_bump must be non-negative")
        new_txid = self.node.replace_transaction(txid_param(txid), fee_bump)
        return hash_to_hex_str(new_txid)

    def regtest_drop(self, txid):
        """Evict a mempool tx and its descendants; the evicted txids."""
        return sorted(hash_to_hex_str(t) for t in self.node.drop_from_mempool(txid_param(txid)))

    def regtest_fail(self, mode=None, seconds=None, delay=None):
        """Start failure `mode` (one of FAILURE_MODES; null heals) for `seconds` or until healed.

        `delay` is how long "slow" answers wait, in seconds.
        """
        if mode is not None and mode not in FAILURE_MODES:
            raise NodeError(RPC_INVALID_PARAMETER,
                            f"mode must be one of {', '.join(FAILURE_MODES)} or null")
        if mode == "refuse" and not seconds:
            raise NodeError(RPC_INVALID_PARAMETER,
                            "refuse needs seconds, or the node would never come back")
        for value, name in ((seconds, "seconds"), (delay, "delay")):
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, (int, float)) or value < 0):
                raise NodeError(RPC_INVALID_PARAMETER, f"{name} must be a non-negative number")
        self._fail(mode, seconds, delay)
        return True

    def regtest_zmq_drop(self, count=1):
        """Count but do not send the node's next `count` ZMQ messages, as a network that
        loses them would; the messages dropped so far."""
        if int_param(count, "count") < 0:
            raise NodeError(RPC_INVALID_PARAMETER, "count must be non-negative")
        announcer = self.node.announcer
        if not hasattr(announcer, "drop"):
            raise NodeError(RPC_INVALID_PARAMETER, "the node publishes no ZMQ notifications")
        announcer.drop(count)
        return announcer.dropped

    def regtest_status(self):
        """{height, generated, mempool, stale}: what is shown, made, pending and orphaned."""
        node = self.node
        return {"height": node.height, "generated": len(node.blocks) - 1,
                "mempool": len(node.mempool), "stale": len(node.stale_blocks)}
