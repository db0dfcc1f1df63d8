"""A deterministic, realistic regtest chain from a seed, with the answers an index must give.

The workload mixes P2PKH, P2SH, P2WPKH, P2WSH, P2TR, bare P2PK and OP_RETURN
outputs; most transactions have 1–3 inputs and 1–3 outputs, with occasional
fan-outs of 100+ outputs and consolidations of 50+ inputs; inputs mostly
spend recent outputs (often from earlier in the same block); and payees are
drawn Zipf-like, so the first few scripts collect very long histories and are
hot within single blocks.  Values are conserved: outputs + fee = inputs.
"""

import bisect
import hashlib
import random
from itertools import accumulate

from electrumx.chain.block import header_hash
from electrumx.chain.script import null_data_script
from electrumx.chain.tx import Tx, TxOutput, WITNESS_FLAG
from electrumx.regtest.chain import assemble_block, coinbase_tx, genesis_block, subsidy
from electrumx.regtest.expected import Expected
from electrumx.regtest.scripts import WITNESS_KINDS, kind_of, script_of, spending_input
from electrumx.regtest.txmaker import split_value

SIZES = {
    # name: (blocks, transactions)
    "tiny": (30, 300),
    "small": (120, 5_000),
    "medium": (400, 50_000),
    "large": (1_500, 500_000),
    "huge": (6_000, 5_000_000),
}

FIRST_BLOCK_TIME = 1_600_000_000
BLOCK_SPACING = 600
# Virtual sizes of the inputs `spending_input` makes, by the kind of output spent,
# so that fees can be a feerate without serialising twice.
_INPUT_VSIZE = {"p2pkh": 148, "p2sh": 187, "p2pk": 114, "p2wpkh": 68, "p2wsh": 96,
                "p2tr": 58}
# How many of the busiest scripts are always among the expected answers.
ALWAYS_SAMPLED = 10


class WorkloadParams:
    """What to generate.  Equal params give byte-identical chains.

    blocks, txs: chain length and number of non-coinbase transactions
      (per block, ramping up fourfold from the first block to the last);
    seed: the random seed;
    scripts: the number of distinct payee scripts (default txs // 4);
    zipf: the exponent of the payee popularity (bigger: busier top scripts);
    extra_payees: scripts that must receive payments, e.g. a test wallet's (the
      generator never spends them);
    coinbase_script: who the coinbases pay (default the last generated script);
    sample: how many random scripts, besides the busiest and the extra payees,
      get expected answers.
    """

    def __init__(self, blocks=30, txs=300, seed=1, scripts=None, zipf=1.1,
                 extra_payees=(), coinbase_script=None, sample=40):
        if blocks < 1 or txs < 0:
            raise ValueError("a workload needs at least one block and no negative txs")
        self.blocks = blocks
        self.txs = txs
        self.seed = seed
        self.scripts = scripts or max(50, txs // 4)
        self.zipf = zipf
        self.extra_payees = tuple(extra_payees)
        self.coinbase_script = coinbase_script
        self.sample = sample

    @classmethod
    def preset(cls, name, **overrides):
        """The params of a size preset (see SIZES), with any field overridden."""
        try:
            blocks, txs = SIZES[name]
        except KeyError:
            raise ValueError(f"unknown chain size {name!r}: one of {', '.join(SIZES)}") \
                from None
        return cls(**{"blocks": blocks, "txs": txs, **overrides})

    def key(self) -> str:
        """A stable digest of the parameters, for the on-disk cache."""
        text = repr((self.blocks, self.txs, self.seed, self.scripts, self.zipf,
                     tuple(s.hex() for s in self.extra_payees),
                     self.coinbase_script.hex() if self.coinbase_script else None,
                     self.sample))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Payees:
    """Draws payee scripts: Zipf-like over the generated ones, extra payees interleaved."""

    EXTRA_SHARE = 0.2

    def __init__(self, params, rng):
        self.rng = rng
        self.scripts = [script_of(i, params.seed) for i in range(params.scripts)]
        self.cumulative = list(accumulate(1.0 / (i + 1) ** params.zipf
                                          for i in range(params.scripts)))
        self.extra_left = [(kind_of(s), s) for s in params.extra_payees]

    def draw(self):
        rng = self.rng
        if self.extra_left and rng.random() < self.EXTRA_SHARE:
            return self.extra_left.pop(0)
        i = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.scripts[min(i, len(self.scripts) - 1)]

    def take_unpaid_extras(self):
        left, self.extra_left = self.extra_left, []
        return left


def generate(params: WorkloadParams, progress=None):
    """Return (raw blocks, Expected) for the workload, genesis first."""
    rng = random.Random(params.seed)
    payees = _Payees(params, rng)
    n_scripts = params.scripts
    sampled = sorted(set(range(min(ALWAYS_SAMPLED, n_scripts))) |
                     set(rng.sample(range(n_scripts), min(params.sample, n_scripts))))
    if params.coinbase_script:
        miner_kind, miner_script = kind_of(params.coinbase_script), params.coinbase_script
    else:
        miner_kind, miner_script = payees.scripts[-1]
    # The miner is sampled too: it has a coinbase in every block.
    extras = [(kind_of(s), s) for s in params.extra_payees]
    sampled_scripts = [payees.scripts[i] for i in sampled] + extras
    expected = Expected(list(dict.fromkeys(sampled_scripts + [(miner_kind, miner_script)])))
    maker = _TxMaker(rng, expected, untouchable=params.extra_payees)

    blocks = [genesis_block()]
    prev_hash = header_hash(blocks[0])
    timestamp = FIRST_BLOCK_TIME
    for height, n_txs in enumerate(_ramp(params.blocks, params.txs), start=1):
        timestamp += BLOCK_SPACING
        txs, fees = [], 0
        if height == params.blocks and payees.extra_left:
            # Every extra payee is paid by the end of the chain, whatever the draws.
            made = maker.pay_all(payees.take_unpaid_extras(), height)
            if made is not None:
                txs.append(made[0])
                fees += made[1]
        for _ in range(n_txs):
            made = maker.make(payees.draw, height)
            if made is None:
                break
            txs.append(made[0])
            fees += made[1]
        coinbase = coinbase_tx(height, [(subsidy(height) + fees, miner_script)])
        raw = assemble_block(prev_hash, timestamp, coinbase, txs)
        maker.coinbase_made(coinbase.txid, coinbase.outputs[0].value, miner_kind,
                            miner_script, height)
        blocks.append(raw)
        prev_hash = header_hash(raw)
        if progress is not None:
            progress(height, params.blocks)
    return blocks, expected


def _ramp(n_blocks, n_txs):
    """Transactions per block, growing along the chain, summing to n_txs."""
    weights = [1 + 3 * i / max(1, n_blocks - 1) for i in range(n_blocks)]
    scale = n_txs / sum(weights)
    counts = [int(w * scale) for w in weights]
    for i in range(n_txs - sum(counts)):
        counts[-1 - (i % n_blocks)] += 1
    return counts


class _TxMaker:
    """Makes spending transactions from a pool of unspent outputs, recent ones last."""

    MEAN_EXTRA_FEERATE = 6    # satoshis per vbyte above the relay minimum of 1
    RECENT_MEAN = 40          # how far back from the newest output inputs typically reach
    DUST = 600

    def __init__(self, rng, expected, untouchable=()):
        self.rng = rng
        self.expected = expected
        self.slot_of = expected.slot_of
        self.utxos = []       # [txid, idx, value, kind, script]
        # Payments to these scripts (a test wallet's) stay unspent: only their owner spends.
        self.untouchable = frozenset(untouchable)

    def coinbase_made(self, txid, value, kind, script, height):
        self.utxos.append([txid, 0, value, kind, script])
        slot = self.slot_of.get(script)
        if slot is not None:
            self.expected.coinbase_received(slot, txid, height, value)

    def make(self, draw_payee, height):
        """(Tx, fee) of one ordinary transaction, or None when nothing is left to spend."""
        utxos = self.utxos
        if not utxos:
            return None
        rng = self.rng
        r = rng.random()
        if r < 0.005 and len(utxos) > 60:
            n_in = rng.randint(50, 60)              # consolidation
        else:
            n_in = 1 if r < 0.6 else (2 if r < 0.9 else 3)
        spent = [self._take_recent() for _ in range(min(n_in, len(utxos)))]
        r = rng.random()
        if r < 0.004:
            n_out = rng.randint(100, 150)           # fan-out
        else:
            n_out = 1 if r < 0.3 else (2 if r < 0.85 else 3)
        total = sum(u[2] for u in spent)
        feerate = 1 + int(rng.expovariate(1 / self.MEAN_EXTRA_FEERATE))
        fee = feerate * (11 + sum(_INPUT_VSIZE.get(u[3], 187) for u in spent) + 34 * n_out)
        if total <= fee + n_out * self.DUST:
            n_out = 1
            fee = min(fee, total // 2)
        payees = [draw_payee() for _ in range(n_out)]
        return self._build(spent, payees, fee, height, rng.random() < 0.03)

    def pay_all(self, payees, height):
        """(Tx, fee) paying each of `payees`, from the richest recent output."""
        recent = self.utxos[-200:]
        if not recent:
            return None
        richest = max(range(len(recent)), key=lambda i: recent[i][2])
        spent = [self.utxos.pop(len(self.utxos) - len(recent) + richest)]
        fee = 2 * (11 + _INPUT_VSIZE.get(spent[0][3], 187) + 34 * len(payees))
        if spent[0][2] <= fee + len(payees) * self.DUST:
            fee = 0
        return self._build(spent, payees, fee, height, False)

    def _take_recent(self):
        utxos = self.utxos
        back = min(int(self.rng.expovariate(1 / self.RECENT_MEAN)), len(utxos) - 1)
        return utxos.pop(len(utxos) - 1 - back)

    def _build(self, spent, payees, fee, height, with_op_return):
        rng = self.rng
        values = split_value(sum(u[2] for u in spent) - fee, len(payees), rng)
        inputs = [spending_input(txid, idx, kind, rng) for txid, idx, _v, kind, _s in spent]
        witness = any(u[3] in WITNESS_KINDS for u in spent)
        outputs = [TxOutput(v, script) for v, (_kind, script) in zip(values, payees)]
        if with_op_return:
            outputs.append(TxOutput(0, null_data_script(rng.randbytes(20))))
        tx = Tx(2, inputs, outputs, 0, WITNESS_FLAG if witness else 0)
        txid = tx.txid
        slot_of, expected = self.slot_of, self.expected
        for txid_in, idx, _value, _kind, script in spent:
            slot = slot_of.get(script)
            if slot is not None:
                expected.spent(slot, txid, height, txid_in, idx)
        append = self.utxos.append
        untouchable = self.untouchable
        for idx, (value, (kind, script)) in enumerate(zip(values, payees)):
            if script not in untouchable:
                append([txid, idx, value, kind, script])
            slot = slot_of.get(script)
            if slot is not None:
                expected.received(slot, txid, height, idx, value)
        return tx, fee

