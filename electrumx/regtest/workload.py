"""A deterministic, realistic regtest chain from a seed, with the answers an index must give.

The workload mixes P2PKH, P2SH, P2WPKH, P2WSH, P2TR, bare P2PK and OP_RETURN
outputs; most transactions have 1–3 inputs and 1–3 outputs, with occasional
fan-outs of 100+ outputs and consolidations of 50+ inputs; inputs mostly
spend recent outputs (often from earlier in the same block); and payees are
drawn Zipf-like, so the first few scripts collect very long histories.

`Expected` records, for a sample of scripts (always the busiest), the
confirmed history, balance and UTXOs that a correct index returns.
"""

import bisect
import hashlib
import random
from itertools import accumulate

from electrumx.chain.hashes import scripthash_from_script
from electrumx.chain.script import (null_data_script, p2pk_script, p2pkh_script,
                                    p2sh_script, witness_script)
from electrumx.chain.tx import Tx, TxInput, TxOutput, WITNESS_FLAG
from electrumx.regtest.chain import assemble_block, coinbase_tx, genesis_block, subsidy
from electrumx.chain.block import header_hash

SIZES = {
    # name: (blocks, transactions)
    "tiny": (30, 300),
    "small": (120, 5_000),
    "medium": (400, 50_000),
    "large": (1_500, 500_000),
    "huge": (6_000, 5_000_000),
}

_KINDS = ("p2pkh", "p2wpkh", "p2wpkh", "p2tr", "p2sh", "p2wsh", "p2pk")
_WITNESS_KINDS = {"p2wpkh", "p2tr", "p2wsh"}


class WorkloadParams:
    """What to generate.  Equal params give byte-identical chains."""

    def __init__(self, blocks=30, txs=300, seed=1, scripts=None, zipf=1.1,
                 extra_payees=(), coinbase_script=None, sample=40):
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
        blocks, txs = SIZES[name]
        return cls(blocks=blocks, txs=txs, **overrides)

    def key(self) -> str:
        """A stable digest of the parameters, for the on-disk cache."""
        text = repr((self.blocks, self.txs, self.seed, self.scripts, self.zipf,
                     tuple(s.hex() for s in self.extra_payees),
                     self.coinbase_script.hex() if self.coinbase_script else None,
                     self.sample))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def script_of(index: int, seed: int):
    """(kind, script) of the index-th script of a workload: deterministic, no key material."""
    kind = _KINDS[index % len(_KINDS)]
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    if kind == "p2pkh":
        return kind, p2pkh_script(digest[:20])
    if kind == "p2sh":
        return kind, p2sh_script(digest[:20])
    if kind == "p2wpkh":
        return kind, witness_script(0, digest[:20])
    if kind == "p2wsh":
        return kind, witness_script(0, digest)
    if kind == "p2tr":
        return kind, witness_script(1, digest)
    return kind, p2pk_script(b"\x02" + digest)


def _witness_for(kind, rng):
    if kind == "p2tr":
        return [rng.randbytes(64)]
    if kind == "p2wsh":
        return [b"", rng.randbytes(72), rng.randbytes(71), rng.randbytes(71)]
    return [rng.randbytes(72), b"\x02" + rng.randbytes(32)]


def _script_sig_for(kind, rng):
    if kind == "p2pkh":
        return b"\x48" + rng.randbytes(72) + b"\x21\x02" + rng.randbytes(32)
    if kind == "p2pk":
        return b"\x48" + rng.randbytes(72)
    if kind == "p2sh":
        return b"\x00\x48" + rng.randbytes(72) + b"\x47" + rng.randbytes(71)
    return b""


class Expected:
    """The answers a correct index gives for the sampled scripts."""

    def __init__(self, scripts):
        self.scripts = list(scripts)            # [(kind, script)]
        self.index = {script: i for i, (_k, script) in enumerate(self.scripts)}
        self.history = [[] for _ in self.scripts]   # [(txid, height)]
        self.utxos = [dict() for _ in self.scripts]  # (txid, idx) -> (height, value)

    def touch(self, slot, txid, height):
        history = self.history[slot]
        if not history or history[-1][0] != txid:
            history.append((txid, height))

    def as_json(self):
        """{scripthash: {history, balance, utxos}} with display-hex txids."""
        out = {}
        for (kind, script), history, utxos in zip(self.scripts, self.history, self.utxos):
            out[scripthash_from_script(script)] = {
                "kind": kind,
                "script": script.hex(),
                "history": [[txid[::-1].hex(), height] for txid, height in history],
                "balance": sum(value for _h, value in utxos.values()),
                "utxos": sorted([[txid[::-1].hex(), idx, height, value]
                                 for (txid, idx), (height, value) in utxos.items()],
                                key=lambda u: (u[2], u[0], u[1])),
            }
        return out


def generate(params: WorkloadParams, progress=None):
    """Return (raw blocks, Expected) for the workload, genesis first."""
    rng = random.Random(params.seed)
    n_scripts = params.scripts
    weights = list(accumulate(1.0 / (i + 1) ** params.zipf for i in range(n_scripts)))
    scripts = [script_of(i, params.seed) for i in range(n_scripts)]
    extra = [("extra", s) for s in params.extra_payees]
    sample_ids = sorted(set(range(min(10, n_scripts))) |
                        set(rng.sample(range(n_scripts), min(params.sample, n_scripts))))
    expected = Expected([scripts[i] for i in sample_ids] + extra)
    slot_of = {script: slot for slot, (_k, script) in enumerate(expected.scripts)}
    miner_script = params.coinbase_script or scripts[n_scripts - 1][1]
    miner_kind = "p2pkh" if params.coinbase_script else scripts[n_scripts - 1][0]

    blocks = [genesis_block()]
    prev_hash = header_hash(blocks[0])
    utxos = []            # [txid, idx, value, kind, script]; recent at the end
    per_block = _ramp(params.blocks, params.txs, rng)
    timestamp = 1_600_000_000
    extra_left = list(params.extra_payees)

    def pick_payee():
        if extra_left and rng.random() < 0.2:
            script = extra_left.pop(0)
            return "extra", script
        i = bisect.bisect_left(weights, rng.random() * weights[-1])
        return scripts[min(i, n_scripts - 1)]

    for height in range(1, params.blocks + 1):
        timestamp += 600
        txs, fees = [], 0
        for _ in range(per_block[height - 1]):
            tx, fee = _make_tx(rng, utxos, pick_payee, expected, slot_of, height)
            if tx is None:
                break
            txs.append(tx)
            fees += fee
        coinbase = coinbase_tx(height, [(subsidy(height) + fees, miner_script)])
        raw = assemble_block(prev_hash, timestamp, coinbase, txs)
        cb_txid = coinbase.txid
        value = coinbase.outputs[0].value
        utxos.append([cb_txid, 0, value, miner_kind, miner_script])
        slot = slot_of.get(miner_script)
        if slot is not None:
            # The coinbase is made last but comes first in its block.
            expected.touch(slot, cb_txid, height)
            expected.utxos[slot][(cb_txid, 0)] = (height, value)
            _move_coinbase_first(expected.history[slot], cb_txid, height)
        blocks.append(raw)
        prev_hash = header_hash(raw)
        if progress is not None:
            progress(height, params.blocks)
    return blocks, expected


def _move_coinbase_first(history, cb_txid, height):
    entry = history.pop()
    assert entry[0] == cb_txid
    first = len(history)
    while first and history[first - 1][1] == height:
        first -= 1
    history.insert(first, entry)


def _ramp(n_blocks, n_txs, rng):
    """Transactions per block, growing along the chain, summing to n_txs."""
    weights = [1 + 3 * i / max(1, n_blocks - 1) for i in range(n_blocks)]
    scale = n_txs / sum(weights)
    counts = [int(w * scale) for w in weights]
    for i in range(n_txs - sum(counts)):
        counts[-1 - (i % n_blocks)] += 1
    return counts


def _make_tx(rng, utxos, pick_payee, expected, slot_of, height):
    """One spending transaction from the UTXO pool; returns (Tx, fee) or (None, 0)."""
    if not utxos:
        return None, 0
    r = rng.random()
    if r < 0.005 and len(utxos) > 60:
        n_in = rng.randint(50, 60)              # consolidation
    else:
        n_in = 1 if r < 0.6 else (2 if r < 0.9 else 3)
    n_in = min(n_in, len(utxos))
    spent = []
    for _ in range(n_in):
        # Mostly recent outputs: an exponential distance from the end of the pool.
        back = min(int(rng.expovariate(1 / 40)), len(utxos) - 1)
        spent.append(utxos.pop(len(utxos) - 1 - back))
    total = sum(u[2] for u in spent)
    r = rng.random()
    if r < 0.004:
        n_out = rng.randint(100, 150)           # fan-out
    else:
        n_out = 1 if r < 0.3 else (2 if r < 0.85 else 3)
    fee = 200 + 150 * n_in + 40 * n_out
    if total <= fee + n_out * 600:
        n_out = 1
        fee = min(fee, total // 2)
    spendable = total - fee
    payees = [pick_payee() for _ in range(n_out)]
    values = _split(spendable, n_out, rng)
    inputs = []
    witness = False
    for txid, idx, _value, kind, _script in spent:
        if kind in _WITNESS_KINDS:
            witness = True
            inputs.append(TxInput(txid, idx, b"", 0xFFFFFFFD, _witness_for(kind, rng)))
        else:
            inputs.append(TxInput(txid, idx, _script_sig_for(kind, rng), 0xFFFFFFFD, []))
    outputs = [TxOutput(v, script) for v, (_kind, script) in zip(values, payees)]
    if rng.random() < 0.03:
        outputs.append(TxOutput(0, null_data_script(rng.randbytes(20))))
    tx = Tx(2, inputs, outputs, 0, WITNESS_FLAG if witness else 0)
    txid = tx.txid
    for txid_in, idx, value, _kind, script in spent:
        slot = slot_of.get(script)
        if slot is not None:
            expected.touch(slot, txid, height)
            del expected.utxos[slot][(txid_in, idx)]
    for idx, (value, (kind, script)) in enumerate(zip(values, payees)):
        utxos.append([txid, idx, value, kind, script])
        slot = slot_of.get(script)
        if slot is not None:
            expected.touch(slot, txid, height)
            expected.utxos[slot][(txid, idx)] = (height, value)
    return tx, fee


def _split(amount, parts, rng):
    if parts == 1:
        return [amount]
    cuts = sorted(rng.randint(1, amount - 1) for _ in range(parts - 1))
    values = [b - a for a, b in zip([0] + cuts, cuts + [amount])]
    return values if all(v > 0 for v in values) else [amount // parts] * (parts - 1) + \
        [amount - amount // parts * (parts - 1)]
