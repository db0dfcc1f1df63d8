"""What a 1.7 client watches: `blockchain.scriptpubkey.subscribe` and `.unsubscribe`, and
`blockchain.outpoint.subscribe`, `.get_status` and `.unsubscribe`.

The parameters are checked strictly, where ElectrumX 2.0 is loose:

- a script (`spk`, `spk_hint`) is 1 to 10,000 bytes of hex (`params.script_pubkey`);
- `txout_idx` is a JSON integer from 0 to 2**32 - 1 (`params.output_index`): not
  a bool, a float or a string (ElectrumX turns 1.5 and true into 1, and takes
  "0"), and not past the last index an input can name;
- `spk_hint` is required and used: an outpoint known to pay another script is
  refused with BAD_REQUEST (ElectrumX ignores the hint, so a wrong or empty
  one gets the answer a right one gets).  The registry files subscriptions
  under the hint's script (see `outpoint_subs`).

Scripts are kept, and echoed in notifications, as lower-case hex.
"""

from electrumx.protocol import costs
from electrumx.protocol.methods import params
from electrumx.protocol.outpoint_subs import hinted_status


class WatchMethods:
    """Handlers of 1.7's script and outpoint subscriptions, over `reader` (an IChainReader)
    and `subscriptions` (the SubscriptionRegistry); `coin` computes a script's hashX."""

    def __init__(self, reader, subscriptions, coin):
        self.reader = reader
        self.subscriptions = subscriptions
        self.coin = coin

    def _script(self, spk):
        """(hashX, script) of a client's script in hex, checked."""
        script = params.script_pubkey(spk)
        return self.coin.hashX_from_script(script), script

    def _outpoint(self, tx_hash, txout_idx, spk_hint):
        """(txid, index, the hint's hashX), checked in the order given."""
        txid = params.tx_hash(tx_hash)
        index = params.output_index(txout_idx)
        hashX, _script = self._script(spk_hint)
        return txid, index, hashX

    def scriptpubkey_subscribe(self, session, spk):
        """The script's status; the session is then told, under the script, when it changes."""
        hashX, script = self._script(spk)
        return self.subscriptions.subscribe_script(session, hashX, script)

    def scriptpubkey_unsubscribe(self, session, spk):
        """True if the session was subscribed to the script."""
        hashX, _script = self._script(spk)
        session.bump_cost(costs.UNSUBSCRIBE)
        return self.subscriptions.unsubscribe_script(session, hashX)

    def outpoint_subscribe(self, session, tx_hash, txout_idx, spk_hint):
        """The outpoint's status ({}, {funder_height} or with its spender); the session is
        then told whenever it changes."""
        txid, index, hashX = self._outpoint(tx_hash, txout_idx, spk_hint)
        session.bump_cost(costs.OUTPOINT_STATUS)
        return self.subscriptions.subscribe_outpoint(session, txid, index, hashX).as_json()

    def outpoint_get_status(self, session, tx_hash, txout_idx, spk_hint):
        """The outpoint's status, as `outpoint_subscribe` answers, without subscribing."""
        txid, index, hashX = self._outpoint(tx_hash, txout_idx, spk_hint)
        session.bump_cost(costs.OUTPOINT_STATUS)
        return hinted_status(self.reader, txid, index, hashX).as_json()

    def outpoint_unsubscribe(self, session, tx_hash, txout_idx):
        """True if the session was subscribed to the outpoint."""
        txid = params.tx_hash(tx_hash)
        index = params.output_index(txout_idx)
        session.bump_cost(costs.UNSUBSCRIBE)
        return self.subscriptions.unsubscribe_outpoint(session, txid, index)

