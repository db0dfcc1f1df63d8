"""A deterministic, realistic regtest chain from a seed, with the answers an index must give.

The workload mixes P2PKH, P2SH, P2WPKH, P2WSH, P2TR, bare P2PK and OP_RETURN
outputs; most transactions have 1–3 inputs and 1–3 outputs, with occasional
fan-outs of 100+ outputs and consolidations of 50+ inputs; inputs mostly
spend recent outputs (often from earlier in the same block); and payees are
drawn Zipf-like, so the first few scripts collect very long histories and are
hot within single blocks.  Values are conserved: outputs + fee = inputs.

The ``mainnet-*`` presets have another shape, closer to Bitcoin's own chain:
block sizes follow mainnet's history (see `_mainnet_counts`), nearly every
output pays a fresh script, typical transactions have 2-3 inputs and outputs,
and a handful of hot scripts (see HOT_TXS) collect 5,000-22,000 transactions
each, like exchanges' and pools' addresses do.
"""

import bisect
import hashlib
import random
from itertools import accumulate
from typing import NamedTuple

from electrumx.chain.block import header_hash
from electrumx.chain.script import null_data_script
from electrumx.chain.tx import Tx, TxOutput, WITNESS_FLAG
from electrumx.regtest.chain import assemble_block, coinbase_tx, genesis_block, subsidy
from electrumx.regtest.expected import Expected
from electrumx.regtest.scripts import WITNESS_KINDS, kind_of, script_of, spending_input
from electrumx.regtest.txmaker import split_value

SIZES = {
    # name: (blocks, transactions, shape)
    "tiny": (30, 300, "ramp"),
    "small": (120, 5_000, "ramp"),
    "medium": (400, 50_000, "ramp"),
    "large": (1_500, 500_000, "ramp"),
    "huge": (6_000, 5_000_000, "ramp"),
    # Mainnet's mean block holds ~1,450 transactions on the curve below, so these
    # block counts put the biggest blocks at ~3,700 (up to ~5,000 with the noise).
    "mainnet-500k": (350, 500_000, "mainnet"),
    "mainnet-5m": (3_500, 5_000_000, "mainnet"),
    "mainnet-20m": (14_000, 20_000_000, "mainnet"),
}
SHAPES = ("ramp", "mainnet")
# History lengths (transactions) the hot scripts of a mainnet-shaped chain aim at.
HOT_TXS = (5_000, 7_000, 9_000, 12_000, 15_000, 18_000, 22_000)
# Non-coinbase transactions per block along mainnet's history, as (share of the
# chain's height, transactions): read off the tx-count-per-block chart, heights
# 0..870,000 (2009: coinbase-only blocks; 2011-13 tens to hundreds; 2015-17 the
# climb to 2,500; 2018-22 a 1,700-2,300 plateau; 2023-24 the 3,500+ of inscriptions).
MAINNET_CURVE = ((0.0, 0.02), (0.10, 0.3), (0.115, 2), (0.15, 50), (0.195, 150),
                 (0.24, 350), (0.29, 300), (0.345, 450), (0.40, 900), (0.46, 1_500),
                 (0.52, 2_000), (0.575, 2_500), (0.63, 2_000), (0.69, 2_300),
                 (0.75, 2_300), (0.80, 1_700), (0.86, 2_000), (0.92, 3_700),
                 (0.98, 3_500), (1.0, 3_200))

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
      (per block, ramping up fourfold from the first block to the last, or
      along mainnet's history with shape="mainnet");
    seed: the random seed;
    shape: "ramp" (Zipf-drawn payees from a fixed set) or "mainnet" (fresh
      payees, hot scripts of hot_txs transactions; scripts and zipf unused);
    scripts: the number of distinct payee scripts (default txs // 4);
    zipf: the exponent of the payee popularity (bigger: busier top scripts);
    hot_txs: the history lengths the mainnet shape's hot scripts aim at;
    extra_payees: scripts that must receive payments, e.g. a test wallet's (the
      generator never spends them);
    coinbase_script: who the coinbases pay (default the last generated script);
    sample: how many random scripts, besides the busiest and the extra payees,
      get expected answers (default 40, or 2,000 for the mainnet shape).
    """

    def __init__(self, blocks=30, txs=300, seed=1, scripts=None, zipf=1.1,
                 extra_payees=(), coinbase_script=None, sample=None, shape="ramp",
                 hot_txs=HOT_TXS):
        if blocks < 1 or txs < 0:
            raise ValueError("a workload needs at least one block and no negative txs")
        if shape not in SHAPES:
            raise ValueError(f"unknown chain shape {shape!r}: one of {', '.join(SHAPES)}")
        self.shape = shape
        self.hot_txs = tuple(hot_txs)
        self.blocks = blocks
        self.txs = txs
        self.seed = seed
        self.scripts = scripts or max(50, txs // 4)
        self.zipf = zipf
        self.extra_payees = tuple(extra_payees)
        self.coinbase_script = coinbase_script
        self.sample = sample if sample is not None else (40 if shape == "ramp" else 2_000)

    @classmethod
    def preset(cls, name, **overrides):
        """The params of a size preset (see SIZES), with any field overridden."""
        try:
            blocks, txs, shape = SIZES[name]
        except KeyError:
            raise ValueError(f"unknown chain size {name!r}: one of {', '.join(SIZES)}") \
                from None
        return cls(**{"blocks": blocks, "txs": txs, "shape": shape, **overrides})

    def key(self) -> str:
        """A stable digest of the parameters, for the on-disk cache."""
        text = repr((self.blocks, self.txs, self.seed, self.scripts, self.zipf,
                     tuple(s.hex() for s in self.extra_payees),
                     self.coinbase_script.hex() if self.coinbase_script else None,
                     self.sample) +
                    # The ramp shape's digests predate the other shapes: they stay as they were.
                    (() if self.shape == "ramp" else (self.shape, self.hot_txs)))
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

    def sampled(self, params):
        """The scripts that get expected answers: the busiest, and a random sample."""
        n_scripts = params.scripts
        sampled = sorted(set(range(min(ALWAYS_SAMPLED, n_scripts))) |
                         set(self.rng.sample(range(n_scripts), min(params.sample, n_scripts))))
        return [self.scripts[i] for i in sampled]

    def miner(self):
        return self.scripts[-1]

    def draw(self):
        rng = self.rng
        if self.extra_left and rng.random() < self.EXTRA_SHARE:
            return self.extra_left.pop(0)
        i = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.scripts[min(i, len(self.scripts) - 1)]

    def take_unpaid_extras(self):
        left, self.extra_left = self.extra_left, []
        return left


class _FreshPayees(_Payees):
    """Mainnet-like payees: mostly never-seen scripts, some reused ones, a few hot ones.

    Script i is script_of(i, seed), made when drawn, so nothing proportional to
    the chain's outputs is kept.  Scripts 0..len(hot_txs)-1 are the hot ones;
    each is drawn with the probability that gives it about hot_txs[i] / 1.7
    payments, which its spends (mostly separate transactions, some outputs
    left unspent) make into a history of about hot_txs[i].  The miner is the
    next script.
    """

    REUSE_SHARE = 0.12      # payments to a script already paid before (any earlier one)
    OUTPUTS_PER_TX = 2.9    # the mean of MAINNET_TX's output counts, fan-outs included

    def __init__(self, params, rng):
        self.rng = rng
        self.seed = params.seed
        self.extra_left = [(kind_of(s), s) for s in params.extra_payees]
        outputs = max(1.0, params.txs * self.OUTPUTS_PER_TX)
        self.hot = [script_of(i, self.seed) for i in range(len(params.hot_txs))]
        self.hot_cumulative = list(accumulate(txs / 1.7 / outputs for txs in params.hot_txs))
        self.first_fresh = len(self.hot) + 1
        self.next_fresh = self.first_fresh

    def sampled(self, params):
        # Sample among the scripts surely reached: ~85% of outputs pay fresh ones.
        reached = max(1, int(params.txs * self.OUTPUTS_PER_TX * 0.7))
        picks = self.rng.sample(range(reached), min(params.sample, reached))
        return self.hot + [script_of(self.first_fresh + i, self.seed) for i in sorted(picks)]

    def miner(self):
        return script_of(len(self.hot), self.seed)

    def draw(self):
        rng = self.rng
        if self.extra_left and rng.random() < self.EXTRA_SHARE:
            return self.extra_left.pop(0)
        r = rng.random()
        hot = self.hot_cumulative
        hot_share = hot[-1] if hot else 0.0
        if r < hot_share:
            return self.hot[bisect.bisect_right(hot, r)]
        if r < hot_share + self.REUSE_SHARE and self.next_fresh > self.first_fresh:
            return script_of(rng.randrange(self.first_fresh, self.next_fresh), self.seed)
        index = self.next_fresh
        self.next_fresh += 1
        return script_of(index, self.seed)


def generate(params: WorkloadParams, progress=None):
    """Return (raw blocks, Expected) for the workload, genesis first."""
    blocks = []
    expected = generate_into(params, blocks.append, progress)
    return blocks, expected


def generate_into(params: WorkloadParams, write_block, progress=None):
    """Pass the workload's raw blocks, genesis first, to write_block; return the Expected.

    Only the unspent outputs and the expected answers stay in memory, so chains
    far bigger than memory can be written to disk as they are made.
    """
    rng = random.Random(params.seed)
    if params.shape == "ramp":
        payees, tx_shape = _Payees(params, rng), RAMP_TX
        counts = _ramp(params.blocks, params.txs)
    else:
        payees, tx_shape = _FreshPayees(params, rng), MAINNET_TX
        counts = _mainnet_counts(params.blocks, params.txs, params.seed)
    sampled_scripts = payees.sampled(params)
    if params.coinbase_script:
        miner_kind, miner_script = kind_of(params.coinbase_script), params.coinbase_script
    else:
        miner_kind, miner_script = payees.miner()
    # The miner is sampled too: it has a coinbase in every block.
    extras = [(kind_of(s), s) for s in params.extra_payees]
    expected = Expected(list(dict.fromkeys(sampled_scripts + extras +
                                           [(miner_kind, miner_script)])))
    maker = _TxMaker(rng, expected, tx_shape, untouchable=params.extra_payees)

    genesis = genesis_block()
    write_block(genesis)
    prev_hash = header_hash(genesis)
    timestamp = FIRST_BLOCK_TIME
    for height, n_txs in enumerate(counts, start=1):
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
        write_block(raw)
        prev_hash = header_hash(raw)
        if progress is not None:
            progress(height, params.blocks)
    return expected


def _ramp(n_blocks, n_txs):
    """Transactions per block, growing along the chain, summing to n_txs."""
    weights = [1 + 3 * i / max(1, n_blocks - 1) for i in range(n_blocks)]
    scale = n_txs / sum(weights)
    counts = [int(w * scale) for w in weights]
    for i in range(n_txs - sum(counts)):
        counts[-1 - (i % n_blocks)] += 1
    return counts


def _mainnet_counts(n_blocks, n_txs, seed):
    """Transactions per block along MAINNET_CURVE, squeezed into n_blocks, summing to n_txs.

    Block i sits at share i / n_blocks of mainnet's height; its size is the
    curve there (linearly between the knots) times a noise factor in
    0.6..1.4, as neighbouring mainnet blocks differ that much, then the whole
    is scaled to n_txs.  Cumulative rounding keeps the sum exact and turns the
    curve's fractions at the start into the odd one-payment block among
    coinbase-only ones.  The noise has its own random stream, so the block
    sizes do not depend on anything else the generator draws.
    """
    noise = random.Random(f"block sizes {seed}")
    shares, values = zip(*MAINNET_CURVE)
    weights = []
    for i in range(n_blocks):
        at = i / max(1, n_blocks - 1)
        k = min(bisect.bisect_right(shares, at), len(shares) - 1)
        (a, x), (b, y) = MAINNET_CURVE[k - 1], MAINNET_CURVE[k]
        weights.append((x + (y - x) * (at - a) / (b - a)) * noise.uniform(0.6, 1.4))
    scale = n_txs / sum(weights)
    bounds = [round(total * scale) for total in accumulate(weights, initial=0.0)]
    return [hi - lo for lo, hi in zip(bounds, bounds[1:])]


class _TxShape(NamedTuple):
    """How many inputs and outputs transactions have.

    inputs, outputs: cumulative probabilities (p, lo, hi) drawn against one
    random number: the first p above it gives lo..hi (no further draw when lo
    == hi); consolidation, fan_out: the shares of 50-60-input and
    100-150-output transactions, drawn against the same numbers first.
    """

    consolidation: float
    inputs: tuple
    fan_out: float
    outputs: tuple


# Mostly 1 input, 1-3 outputs: the shape of the original presets (their bytes rely on it).
RAMP_TX = _TxShape(0.005, ((0.6, 1, 1), (0.9, 2, 2), (1.0, 3, 3)),
                   0.004, ((0.3, 1, 1), (0.85, 2, 2), (1.0, 3, 3)))
# Mainnet-like: 2.2 inputs and 2.9 outputs on average, mostly 2-3 of each.
MAINNET_TX = _TxShape(0.002, ((0.3, 1, 1), (0.65, 2, 2), (0.9, 3, 3), (1.0, 4, 8)),
                      0.002, ((0.08, 1, 1), (0.65, 2, 2), (0.9, 3, 3), (1.0, 4, 10)))


def _draw_count(rng, r, table):
    """The count `table` gives for r in [0, 1) (its last p is 1.0)."""
    for p, lo, hi in table:
        if r < p:
            return lo if lo == hi else rng.randint(lo, hi)
    raise ValueError("a count table must end at p = 1.0")


class _TxMaker:
    """Makes spending transactions from a pool of unspent outputs, recent ones last."""

    MEAN_EXTRA_FEERATE = 6    # satoshis per vbyte above the relay minimum of 1
    RECENT_MEAN = 40          # how far back from the newest output inputs typically reach
    DUST = 600

    def __init__(self, rng, expected, shape, untouchable=()):
        self.rng = rng
        self.shape = shape
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
        rng, shape = self.rng, self.shape
        r = rng.random()
        if r < shape.consolidation and len(utxos) > 60:
            n_in = rng.randint(50, 60)
        else:
            n_in = _draw_count(rng, r, shape.inputs)
        spent = [self._take_recent() for _ in range(min(n_in, len(utxos)))]
        r = rng.random()
        if r < shape.fan_out:
            n_out = rng.randint(100, 150)
        else:
            n_out = _draw_count(rng, r, shape.outputs)
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

