"""The mainnet-shaped workload has the promised shape, right answers, and stays deterministic.

The chains here are the mainnet shape scaled down (hundreds of blocks, thousands
of transactions, hot scripts of hundreds of transactions) so they take a second.
"""

import hashlib
from collections import Counter

import pytest

from electrumx.chain.tx import deserialize_block_txs
from electrumx.regtest.workload import (HOT_TXS, SIZES, WorkloadParams, _mainnet_counts,
                                        generate)
from tests.regtest.test_chain import assert_expected_matches

HOT = (600, 1_000, 1_500)
SCALED = WorkloadParams(blocks=100, txs=15_000, seed=5, shape="mainnet", hot_txs=HOT)


@pytest.fixture(scope="module")
def scaled():
    return generate(SCALED)


def test_block_sizes_grow_like_mainnets_from_one_tx_to_thousands():
    blocks, txs, _shape = SIZES["mainnet-5m"]
    counts = _mainnet_counts(blocks, txs, seed=1)
    assert sum(counts) == txs and len(counts) == blocks
    tenth = blocks // 10
    assert max(counts[:tenth]) <= 1          # 2009-like: coinbase-only blocks, rare payments
    assert max(counts) >= 3_000
    means = [sum(counts[i:i + blocks // 5]) / (blocks // 5) for i in range(0, blocks, blocks // 5)]
    assert means == sorted(means)            # growing, quintile by quintile
    assert means[-1] > 5 * means[1]


def test_scaled_chain_has_fresh_scripts_typical_shapes_and_a_few_hot_scripts(scaled):
    blocks, expected = scaled
    outputs, scripts, inputs_per_tx, outputs_per_tx = 0, set(), Counter(), Counter()
    sizes = []
    for raw in blocks[1:]:
        txs = deserialize_block_txs(raw)
        sizes.append(len(txs))
        for tx in txs[1:]:
            inputs_per_tx[len(tx.inputs)] += 1
            outputs_per_tx[len(tx.outputs)] += 1
            for output in tx.outputs:
                outputs += 1
                scripts.add(output.script)
    assert sizes[0] == 1 and max(sizes) > 300
    assert len(scripts) > 0.8 * outputs                        # about one new script per output
    n = sum(inputs_per_tx.values())
    assert 2 <= sum(k * v for k, v in inputs_per_tx.items()) / n <= 3
    assert 2 <= sum(k * v for k, v in outputs_per_tx.items()) / n <= 3
    assert (inputs_per_tx[2] + inputs_per_tx[3]) / n > 0.5
    assert (outputs_per_tx[2] + outputs_per_tx[3]) / n > 0.7
    lengths = sorted(len(h) for h in expected.history)
    busy = [n for n in lengths if n >= min(HOT) / 2]
    assert len(busy) == len(HOT)                               # just the hot scripts
    for got, aimed in zip(busy, sorted(HOT)):
        assert 0.6 * aimed < got < 1.4 * aimed
    assert sum(1 for n in lengths if 0 < n < 20) > 1_000       # and many ordinary ones


def test_scaled_chains_expected_answers_are_right(scaled):
    blocks, expected = scaled
    assert_expected_matches(expected.as_json(), blocks)


def test_mainnet_shape_is_deterministic_and_cached_apart():
    small = WorkloadParams(blocks=20, txs=400, seed=7, shape="mainnet", hot_txs=(40,))
    a, _ = generate(small)
    b, _ = generate(WorkloadParams(blocks=20, txs=400, seed=7, shape="mainnet", hot_txs=(40,)))
    c, _ = generate(WorkloadParams(blocks=20, txs=400, seed=8, shape="mainnet", hot_txs=(40,)))
    assert a == b and a != c
    assert small.key() != WorkloadParams(blocks=20, txs=400, seed=7).key()
    assert WorkloadParams.preset("mainnet-500k").hot_txs == HOT_TXS


def test_the_original_presets_are_unchanged():
    """Their cache entries and the tests' expectations rely on these exact bytes."""
    assert {name: WorkloadParams.preset(name).key() for name in ("tiny", "small", "huge")} == \
        {"tiny": "0d702ecb738b98e3", "small": "bd5856513d0d60a5", "huge": "506c168172ab4f23"}
    blocks, _ = generate(WorkloadParams(blocks=10, txs=60, seed=7))
    assert hashlib.sha256(b"".join(blocks)).hexdigest().startswith("1a34c57ac3dd377a")


def test_unknown_shapes_are_refused():
    with pytest.raises(ValueError, match="unknown chain shape"):
        WorkloadParams(shape="testnet")
