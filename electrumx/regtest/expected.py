"""The answers a correct index gives for a sample of a generated chain's scripts.

The generator records them as it builds the chain, so tests and benchmarks
can check the server against them: confirmed history in block order,
confirmed balance, and UTXOs.  OP_RETURN outputs and the genesis coinbase are
not indexed by the server, so they never appear here.
"""

from electrumx.chain.hashes import scripthash_from_script


class Expected:
    """History and UTXOs of the sampled scripts, filled in while the chain is built."""

    def __init__(self, scripts):
        self.scripts = list(scripts)                     # [(kind, script)]
        self.slot_of = {script: slot for slot, (_k, script) in enumerate(self.scripts)}
        self.history = [[] for _ in self.scripts]        # [(txid, height)]
        self.utxos = [dict() for _ in self.scripts]      # (txid, idx) -> (height, value)

    def spent(self, slot, txid, height, prev_txid, prev_idx):
        """Transaction `txid` spends (prev_txid, prev_idx), an output of the slot's script."""
        self._touch(slot, txid, height)
        del self.utxos[slot][(prev_txid, prev_idx)]

    def received(self, slot, txid, height, idx, value):
        """Output `idx` of `txid` pays the slot's script."""
        self._touch(slot, txid, height)
        self.utxos[slot][(txid, idx)] = (height, value)

    def coinbase_received(self, slot, txid, height, value):
        """The coinbase of `height` pays the slot's script.

        The coinbase is made after the block's other transactions (it collects
        their fees) but comes first in the block, so it goes before them.
        """
        self.utxos[slot][(txid, 0)] = (height, value)
        history = self.history[slot]
        first = len(history)
        while first and history[first - 1][1] == height:
            first -= 1
        history.insert(first, (txid, height))

    def _touch(self, slot, txid, height):
        history = self.history[slot]
        if not history or history[-1][0] != txid:
            history.append((txid, height))

    def longest_history(self) -> int:
        return max((len(h) for h in self.history), default=0)

    def as_json(self):
        """{scripthash: {kind, script, history, balance, utxos}} with display-hex txids.

        history is [[txid, height]] in block order; utxos are
        [[txid, tx_pos, height, value]] sorted by (height, txid, tx_pos).
        """
        out = {}
        for (kind, script), history, utxos in zip(self.scripts, self.history, self.utxos):
            out[scripthash_from_script(script)] = {
                "kind": kind,
                "script": script.hex(),
                "history": [[txid[::-1].hex(), height] for txid, height in history],
                "balance": sum(value for _h, value in utxos.values()),
                "utxos": sorted([[txid[::-1].hex(), idx, height, value]
                                 for (txid, idx), (height, value) in utxos.items()],
                                key=lambda u: (u[2], u[0], u[1])),
            }
        return out
