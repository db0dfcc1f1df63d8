"""Debian's real Electrum wallet, in regtest, against our server and nothing else.

Electrum checks what a server says: it verifies the header chain and a
merkle proof for every confirmed transaction before it counts it.  So a
wallet restored from a fixed seed that shows exactly the history, balance
and coins the regtest node made for its addresses, and that sees its own
payment go out through us and come back confirmed, is the end-to-end proof
that the protocol layer and the index are right.
"""

import json
import urllib.request
from base64 import b64encode

import pytest

from tests.wallet.conftest import WAIT
from tests.wallet.electrum_cli import sats
from tests.wallet.processes import wait_until

pytestmark = pytest.mark.wallet

# An address outside the wallet (BIP173's P2WPKH example, in regtest form).
OUTSIDE_ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
AMOUNT = "1.5"
FEE = "0.0001"


def test_restored_wallet_sees_its_history_then_pays_and_sees_it_confirmed(chain, wallet):
    wait_until(lambda: synchronized(wallet, chain.tip), WAIT, "wallet synchronized")
    history, coins, balance = expected_view(chain)
    assert wallet_history(wallet) == history
    assert wallet_coins(wallet) == coins
    assert wallet("getbalance") == {"confirmed": btc(balance)}

    tx = wallet("payto", OUTSIDE_ADDRESS, AMOUNT, "--fee", FEE)
    txid = wallet("broadcast", tx)
    assert txid in node_rpc(chain, "getrawmempool")
    # The wallet learns of its payment only from our server's notification.
    pending = wait_until(lambda: wallet_history(wallet).get(txid), WAIT, "payment seen")
    height, value, confirmations = pending
    assert height == 0 and confirmations == 0
    fee = -value - sats(AMOUNT)
    assert fee == sats(node_rpc(chain, "getmempoolentry", txid)["fees"]["base"])

    new_tip = chain.tip + 1
    assert len(node_rpc(chain, "regtest_mine", 1)) == 1
    # Confirmed means Electrum checked the new header and the payment's merkle proof.
    wait_until(lambda: wallet_history(wallet).get(txid) == (new_tip, value, 1),
               WAIT, "payment confirmed")
    assert wallet("getbalance") == {"confirmed": btc(balance + value)}
    coins_now = wallet_coins(wallet)
    assert sum(value for _address, _height, value in coins_now.values()) == balance + value
    assert {outpoint[0] for outpoint in coins_now.keys() - coins.keys()} == {txid}


def synchronized(wallet, tip) -> bool:
    """Connected at `tip`, histories fetched, and every confirmed tx's merkle proof checked.

    The tip and a non-empty history are part of it because `is_synchronized`
    is briefly true before the daemon has asked the server anything.
    """
    info = wallet("getinfo")
    if not (info["connected"] and info["blockchain_height"] == tip):
        return False
    if wallet("is_synchronized") is not True:
        return False
    history = wallet_history(wallet)
    return bool(history) and all(conf > 0 for height, _v, conf in history.values() if height > 0)


def expected_view(chain):
    """What the wallet must show: ({txid: (height, value, confirmations)},
    {(txid, pos): (address, height, value)}, balance), all in satoshis.

    The generator never spends the wallet's coins, so a transaction's value to
    the wallet is what it pays the wallet's addresses.
    """
    coins = {}
    for address, answer in zip(chain.addresses, chain.expected):
        for txid, pos, height, value in answer["utxos"]:
            coins[(txid, pos)] = (address, height, value)
    history = {}
    for answer in chain.expected:
        for txid, height in answer["history"]:
            value = sum(v for (t, _pos), (_a, _h, v) in coins.items() if t == txid)
            history[txid] = (height, value, chain.tip - height + 1)
    return history, coins, sum(value for _a, _h, value in coins.values())


def wallet_history(wallet):
    return {t["txid"]: (t["height"], sats(t["bc_value"]), t["confirmations"])
            for t in wallet("onchain_history")["transactions"]}


def wallet_coins(wallet):
    return {(c["prevout_hash"], c["prevout_n"]): (c["address"], c["height"], sats(c["value"]))
            for c in wallet("listunspent")}


def btc(satoshis: int) -> str:
    """Electrum's way of writing an amount: no trailing zeros, "0." for nothing."""
    whole, frac = divmod(satoshis, 100_000_000)
    return f"{whole}.{frac:08d}".rstrip("0")


def node_rpc(chain, method, *params):
    """One JSON-RPC call to the regtest node (its control methods included)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{chain.node_port}/",
        data=json.dumps({"id": 1, "method": method, "params": list(params)}).encode(),
        headers={"Authorization": "Basic " + b64encode(b"regtest:regtest").decode()})
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        reply = json.load(response)
    assert reply["error"] is None, (method, reply["error"])
    return reply["result"]
