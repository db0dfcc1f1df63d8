"""The `blockchain.scripthash.*` methods (protocols 1.4 to 1.6): a script named by its hash.

A script hash names an output script (REFERENCE §1.6); the index is keyed by
its first 11 bytes, the hashX.  The work is `ScriptQueries`'s, shared with
1.7's `blockchain.scriptpubkey.*`.
"""

from electrumx.protocol import costs
from electrumx.protocol.methods import params


class ScriptHashMethods:
    """Handlers of the script hash family over `queries` (a ScriptQueries)."""

    def __init__(self, queries, subscriptions):
        self.queries = queries
        self.subscriptions = subscriptions

    def get_balance(self, session, scripthash):
        return self.queries.balance(session, params.script_hash(scripthash))

    def get_history(self, session, scripthash, from_height=0, to_height=-1):
        """The history, or a page of it (Fulcrum's from_height and to_height)."""
        return self.queries.history(session, params.script_hash(scripthash),
                                    from_height, to_height)

    def get_mempool(self, session, scripthash):
        return self.queries.mempool(session, params.script_hash(scripthash))

    def listunspent(self, session, scripthash):
        return self.queries.utxos(session, params.script_hash(scripthash))

    def subscribe(self, session, scripthash):
        """The script's status; the session is then told whenever it changes."""
        params.script_hash(scripthash)
        return self.subscriptions.subscribe(session, scripthash)

    def unsubscribe(self, session, scripthash):
        """True if the session was subscribed (protocol 1.4.2 and later)."""
        params.script_hash(scripthash)
        session.bump_cost(costs.UNSUBSCRIBE)
        return self.subscriptions.unsubscribe(session, scripthash)
