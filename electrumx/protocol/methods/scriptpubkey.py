"""The `blockchain.scriptpubkey.*` queries (protocol 1.7): a script named by itself, in hex.

1.7 replaced the script hash methods with these, which lets a server index
scripts however it likes (a compact block filter, say).  We still key the
index by the script's hashX, computed here the way the coin computes it when
indexing, and answer through the same `ScriptQueries` as the 1.4-1.6
methods; only the wrapping differs: lists come in an object ({"history": [...]},
{"utxos": [...]}).  The scripts are checked strictly: non-empty, whole bytes,
at most `params.MAX_SCRIPT_BYTES` (ElectrumX 2.0 takes an empty script and
longer ones).

`subscribe` and `unsubscribe` of this family live with the subscriptions.
"""

from electrumx.protocol.methods import params


class ScriptPubKeyMethods:
    """Handlers of the scriptPubKey queries over `queries` (a ScriptQueries) for `coin`."""

    def __init__(self, queries, coin):
        self.queries = queries
        self.coin = coin

    def hashX(self, spk) -> bytes:
        """The index key of a client's script (hex), checked."""
        return self.coin.hashX_from_script(params.script_pubkey(spk))

    def get_balance(self, session, spk):
        return self.queries.balance(session, self.hashX(spk))

    def get_history(self, session, spk, from_height=0, to_height=-1):
        """{"history": [...]}: the history, or a page of it (Fulcrum's from/to_height)."""
        return {"history": self.queries.history(session, self.hashX(spk),
                                                from_height, to_height)}

    def get_mempool(self, session, spk):
        return {"history": self.queries.mempool(session, self.hashX(spk))}

    def listunspent(self, session, spk):
        return {"utxos": self.queries.utxos(session, self.hashX(spk))}
