"""The README's demo with Debian's real Electrum wallet: what a user does, step by step.

Electrum checks what a server says: it verifies the header chain and a
merkle proof for every confirmed transaction before it counts it.  So a
wallet restored from the demo's seed with the commands the demo prints
(and the README repeats), that shows exactly the history the generated chain
paid it, sees the demo's payments arrive in the mempool, and sees its own
payment go out through our server and come back confirmed by the demo's
next block, is the end-to-end proof that the protocol layer, the index and
the demo are right.
"""

import re

import pytest

from electrumx.chain.hashes import scripthash_from_script
from electrumx.regtest.demo import (PAYMENT_AMOUNT, WALLET_ADDRESSES, WALLET_SCRIPTS,
                                    WALLET_SEED, demo_chain, wallet_commands)
from tests.wallet.conftest import BLOCK_INTERVAL_MS, WAIT
from tests.wallet.electrum_cli import ELECTRUM, sats
from tests.wallet.processes import wait_until

pytestmark = pytest.mark.wallet


def test_electrum_derives_the_addresses_the_demo_pays_from_its_seed(electrum):
    electrum(f'{ELECTRUM} --offline restore "{WALLET_SEED}"')
    listed = electrum.query("--offline listaddresses --receiving")
    assert listed[:len(WALLET_ADDRESSES)] == list(WALLET_ADDRESSES)


def test_the_readme_demo_with_a_real_electrum_wallet(demo, electrum, tmp_path):
    commands = demo.printed_commands()
    assert commands == wallet_commands(f"127.0.0.1:{demo.port}:t")
    restore, daemon, load_wallet, getbalance, onchain_history, pay, stop = commands

    electrum(restore)
    electrum.start_daemon(daemon, tmp_path / "electrum-daemon.log")
    # `daemon -d` returns once it has forked: its daemon may take a moment to answer.
    wait_until(lambda: electrum.run(load_wallet).returncode == 0, WAIT, "wallet loaded")

    def history():
        return {t["txid"]: (t["height"], sats(t["bc_value"]), t["confirmations"])
                for t in electrum(onchain_history)["transactions"]}

    generated = generated_history(demo)
    generated_tip = max(height for height, _value in generated.values())

    def synchronized_view():
        """(history, balance) once the wallet has checked all it was told, and no block
        came between the two (whose confirmations would differ)."""
        if electrum.query("is_synchronized") is not True:
            return None
        before, balance, after = history(), electrum(getbalance), history()
        if before != after or any(conf == 0 for height, _v, conf in before.values()
                                  if height > 0):
            return None
        if {txid: (h, v) for txid, (h, v, _c) in before.items() if 0 < h <= generated_tip} \
                != generated:
            return None
        return before, balance

    view, balance = wait_until(synchronized_view, WAIT, "wallet synchronized")
    # Besides the generated chain's payments: the demo's, in its blocks and its mempool.
    assert all(value > 0 for _h, value, _c in view.values())
    assert_balance(view, balance)
    view, balance = wait_until(lambda: (v := synchronized_view()) and unconfirmed(v[0]) and v,
                               WAIT, "a payment of the demo in the mempool")
    assert_balance(view, balance)

    txid = electrum(pay)
    assert re.fullmatch(r"[0-9a-f]{64}", txid), txid
    # It went through our server: blockchain.transaction.broadcast, to the demo's node.
    assert f"sent transaction {txid}" in demo.log()
    _height, value, _conf = wait_until(lambda: history().get(txid), WAIT, "payment seen")
    assert value < -sats(PAYMENT_AMOUNT)              # the amount, and the fee

    def confirmed():
        entry = history().get(txid)
        return entry if entry[0] > 0 and entry[2] > 0 else None
    height, _value, _conf = wait_until(confirmed, 2 * BLOCK_INTERVAL_MS / 1000 + 10,
                                       "payment confirmed")
    assert height in blocks_after(demo.log(), f"sent transaction {txid}")[:2], \
        "not mined by the demo's next block"
    # (the next but one when the node mined a block just before the broadcast and the
    # index, polling it every second, logged that block just after)
    assert_balance(*wait_until(synchronized_view, WAIT, "wallet synchronized"))

    assert electrum(stop) == "Daemon stopped"


def generated_history(demo):
    """{txid: (height, value)} the demo's generated chain pays the wallet, in satoshis.

    The chain never spends the wallet's coins, so a transaction's value to
    the wallet is what its outputs pay the wallet's addresses.
    """
    expected = demo_chain(cache_dir=str(demo.cache_dir)).expected
    history = {}
    for script in WALLET_SCRIPTS:
        answer = expected[scripthash_from_script(script)]
        for txid, _pos, height, value in answer["utxos"]:
            old_height, old_value = history.get(txid, (height, 0))
            history[txid] = (height, old_value + value)
        assert {txid for txid, _height in answer["history"]} <= history.keys()
    return history


def unconfirmed(view) -> bool:
    return any(height <= 0 for height, _v, _c in view.values())


def assert_balance(view, balance):
    """Electrum's balance is the sum of its history: confirmed, and in the mempool."""
    assert sats(balance["confirmed"]) == sum(v for h, v, _c in view.values() if h > 0)
    assert sats(balance.get("unconfirmed", 0)) == sum(v for h, v, _c in view.values() if h <= 0)


def blocks_after(log: str, line: str) -> list:
    """The heights of the blocks the demo's index logged after `line`."""
    return [int(h) for h in re.findall(r"\] block (\d+) ", log[log.index(line):])]
