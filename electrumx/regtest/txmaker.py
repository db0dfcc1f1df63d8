"""Transactions the node's levers make: payments, RBF replacements, double spends.

They spend real outputs of the node's chain or mempool, conserve value, pay
a fee of a few satoshis per virtual byte, and have inputs of realistic size
for the scripts they spend.
"""

from electrumx.chain.tx import Tx, TxOutput, WITNESS_FLAG
from electrumx.regtest.scripts import WITNESS_KINDS, kind_of, script_of, spending_input

FEERATES = (1, 2, 3, 5, 8, 13, 21, 34)          # satoshis per virtual byte
_PAYEE_SEED = "mempool"


def payment(spent, rng, outputs=None, min_fee=0, feerate=None, extra_fee=0,
            pay=None) -> Tx:
    """A transaction spending `spent` [(outpoint, value, script)] to fresh payees.

    It has `outputs` outputs to fresh payees (default 1–3 at random) and pays
    max(min_fee, feerate * vsize) + extra_fee; ValueError if the inputs cannot
    cover that.  `pay`, a (script, value), comes first and gets exactly that
    value: a payment to a known wallet, the fresh payees taking the change.
    """
    n_out = outputs or rng.choice((1, 2, 2, 3))
    inputs = [spending_input(o[:32], int.from_bytes(o[32:], "little"), kind_of(script), rng)
              for o, _value, script in spent]
    flag = WITNESS_FLAG if any(kind_of(s) in WITNESS_KINDS for _o, _v, s in spent) else 0
    payees = [script_of(rng.getrandbits(64), _PAYEE_SEED)[1] for _ in range(n_out)]
    fixed = [TxOutput(pay[1], pay[0])] if pay else []
    tx = Tx(2, inputs, fixed + [TxOutput(0, script) for script in payees], 0, flag)
    fee = max(min_fee, (feerate or rng.choice(FEERATES)) * tx.vsize) + extra_fee
    available = sum(value for _o, value, _s in spent) - fee - sum(o.value for o in fixed)
    if available < n_out:
        raise ValueError("the inputs cannot pay the fee")
    values = split_value(available, n_out, rng)
    return Tx(2, inputs, fixed + [TxOutput(v, s) for v, s in zip(values, payees)], 0, flag)


def double_spends(candidates, count, utxos, rng, taken):
    """Up to `count` payments, each spending a confirmed input of a different candidate tx.

    `utxos` is the UTXO view (outpoint -> (value, script, height)); outpoints
    in `taken` are left alone, and the ones used are added to it.
    """
    order = list(candidates)
    rng.shuffle(order)
    made = []
    for tx in order:
        if len(made) >= count:
            break
        for txin in tx.inputs:
            outpoint = txin.prevout
            if outpoint in utxos and outpoint not in taken:
                value, script, _height = utxos[outpoint]
                try:
                    made.append(payment([(outpoint, value, script)], rng, outputs=1))
                except ValueError:
                    continue
                taken.add(outpoint)
                break
    return made


def split_value(amount, parts, rng):
    """`amount` cut into `parts` values at random points (positive when amount allows)."""
    if parts == 1:
        return [amount]
    if amount < 2 * parts:
        return [amount // parts] * (parts - 1) + [amount - amount // parts * (parts - 1)]
    cuts = sorted(rng.sample(range(1, amount), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, amount])]
