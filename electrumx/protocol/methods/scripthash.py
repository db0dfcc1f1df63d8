"""The `blockchain.scripthash.*` methods: balance, history, mempool, UTXOs, subscriptions.

A script hash names an output script (REFERENCE §1.6); the index is keyed by
its first 11 bytes, the hashX.  Transaction hashes go out in display hex.
"""

import orjson

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.protocol import costs
from electrumx.protocol.errors import HISTORY_TOO_LONG, RPCError
from electrumx.protocol.methods import params


class ScriptHashMethods:
    """Handlers of the script hash family; histories are capped at `history_limit`."""

    def __init__(self, reader, subscriptions, history_limit: int):
        self.reader = reader
        self.subscriptions = subscriptions
        self.history_limit = history_limit

    def get_balance(self, session, scripthash):
        hashX = params.script_hash(scripthash)
        session.bump_cost(costs.BALANCE)
        confirmed, unconfirmed = self.reader.balance(hashX)
        return {"confirmed": confirmed, "unconfirmed": unconfirmed}

    def _mempool_entries(self, session, hashX):
        entries = [{"tx_hash": hash_to_hex_str(txid), "height": height, "fee": fee}
                   for txid, height, fee in self.reader.mempool_history(hashX)]
        session.bump_cost(costs.mempool_entries(len(entries)))
        return entries

    def get_history(self, session, scripthash):
        """Confirmed transactions in chain order, then the mempool ones.

        The confirmed part comes as ready JSON (cached by the reader for busy
        scripts), spliced into the reply as an orjson Fragment.
        """
        hashX = params.script_hash(scripthash)
        count, confirmed = self.reader.confirmed_history_json(hashX, self.history_limit)
        if count >= self.history_limit:
            raise RPCError(HISTORY_TOO_LONG, "history too large")
        session.bump_cost(costs.history(count))
        mempool = orjson.dumps(self._mempool_entries(session, hashX))[1:-1]
        joined = b",".join(part for part in (confirmed, mempool) if part)
        return orjson.Fragment(b"[" + joined + b"]")

    def get_mempool(self, session, scripthash):
        return self._mempool_entries(session, params.script_hash(scripthash))

    def listunspent(self, session, scripthash):
        """Unspent outputs in chain order, mempool ones last; none spent in the mempool."""
        hashX = params.script_hash(scripthash)
        utxos = self.reader.utxos(hashX)
        session.bump_cost(costs.utxos(len(utxos)))
        return [{"tx_hash": hash_to_hex_str(txid), "tx_pos": idx, "height": height,
                 "value": value}
                for txid, idx, height, value in utxos]

    def subscribe(self, session, scripthash):
        """The script's status; the session is then told whenever it changes."""
        params.script_hash(scripthash)
        return self.subscriptions.subscribe(session, scripthash)

    def unsubscribe(self, session, scripthash):
        """True if the session was subscribed (protocol 1.4.2 and later)."""
        params.script_hash(scripthash)
        session.bump_cost(costs.UNSUBSCRIBE)
        return self.subscriptions.unsubscribe(session, scripthash)
