"""What a client may ask about one script, by its index key (hashX): the work shared by
protocol 1.4-1.6's `blockchain.scripthash.*` and 1.7's `blockchain.scriptpubkey.*`.

The two families differ only in how a script is named (its hash, or the script
itself) and how a result is wrapped (1.7 puts lists in an object); both call
these, so they cannot drift apart.  Transaction hashes go out in display hex.
"""

import orjson

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.protocol import costs
from electrumx.protocol.errors import HISTORY_TOO_LONG, RPCError
from electrumx.protocol.methods import params


class ScriptQueries:
    """Balance, history, mempool and UTXOs of a hashX; a history page holds fewer than
    `history_limit` entries."""

    def __init__(self, reader, history_limit: int):
        self.reader = reader
        self.history_limit = history_limit

    def balance(self, session, hashX) -> dict:
        session.bump_cost(costs.BALANCE)
        confirmed, unconfirmed = self.reader.balance(hashX)
        return {"confirmed": confirmed, "unconfirmed": unconfirmed}

    def mempool(self, session, hashX) -> list:
        """The script's mempool transactions, in the order protocol 1.6 mandates."""
        entries = [{"tx_hash": hash_to_hex_str(txid), "height": height, "fee": fee}
                   for txid, height, fee in self.reader.mempool_history(hashX)]
        session.bump_cost(costs.mempool_entries(len(entries)))
        return entries

    def history(self, session, hashX, from_height=0, to_height=-1):
        """Confirmed transactions with from_height <= height < to_height in chain order,
        then, when to_height is -1 (the default), the mempool ones: Fulcrum's paging.

        The limit applies to the page, so a script whose whole history is too long
        to send is read in pages.  The confirmed part comes as ready JSON (cached
        by the reader for busy scripts), spliced into the reply as an orjson
        Fragment.
        """
        from_height, to_height = params.history_range(from_height, to_height)
        count, confirmed = self.reader.confirmed_history_json(
            hashX, self.history_limit, from_height, to_height)
        if count >= self.history_limit:
            raise RPCError(HISTORY_TOO_LONG, "history too large")
        session.bump_cost(costs.history(count))
        parts = [confirmed]
        if to_height is None:
            parts.append(orjson.dumps(self.mempool(session, hashX))[1:-1])
        return orjson.Fragment(b"[" + b",".join(part for part in parts if part) + b"]")

    def utxos(self, session, hashX) -> list:
        """Unspent outputs in chain order, mempool ones last; none spent in the mempool."""
        utxos = self.reader.utxos(hashX)
        session.bump_cost(costs.utxos(len(utxos)))
        return [{"tx_hash": hash_to_hex_str(txid), "tx_pos": idx, "height": height,
                 "value": value}
                for txid, idx, height, value in utxos]
