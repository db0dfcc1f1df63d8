"""The spend status of one transaction output (protocol 1.7's `blockchain.outpoint.*`).

The read API computes it from the index and the mempool; the protocol layer
turns it into the JSON a client gets and compares it to notice a change.  It
lives here, below both, like `chain.status`.
"""

from dataclasses import dataclass

from electrumx.chain.hashes import hash_to_hex_str


@dataclass(frozen=True, slots=True)
class OutpointStatus:
    """Where an output was created and where it was spent, as far as the server knows.

    Heights follow the history convention: a block height when confirmed, 0 in
    the mempool, -1 in the mempool with an unconfirmed input.

    - `funder_height` None: the output is unknown (never seen, not an output of
      a known transaction, or an output that can never be spent, like OP_RETURN);
      every other field is then None too.
    - `funder_hashX`: the index key of the output's script, to check a client's
      `spk_hint` against and to file subscriptions under (a change to the
      outpoint always touches that script's history).
    - `spender_txid` (internal byte order) and `spender_height`: None while unspent.
    """

    funder_height: int | None = None
    funder_hashX: bytes | None = None
    spender_txid: bytes | None = None
    spender_height: int | None = None

    @property
    def known(self) -> bool:
        return self.funder_height is not None

    @property
    def in_mempool(self) -> bool:
        """Whether a mempool transaction has a part in it (its heights change with blocks
        that touch neither script: a parent confirming turns -1 into 0)."""
        return ((self.funder_height is not None and self.funder_height <= 0)
                or (self.spender_height is not None and self.spender_height <= 0))

    def as_json(self) -> dict:
        """The protocol's dict: {}, {funder_height}, or that with spender_txhash and
        spender_height."""
        if self.funder_height is None:
            return {}
        result: dict = {"funder_height": self.funder_height}
        if self.spender_txid is not None:
            result["spender_txhash"] = hash_to_hex_str(self.spender_txid)
            result["spender_height"] = self.spender_height
        return result


UNKNOWN = OutpointStatus()
