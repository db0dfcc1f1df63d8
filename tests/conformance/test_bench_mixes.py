"""bench/load.py's light mix asks what it says, in the stated proportions."""

import random
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from load import LIGHT_MIX, MIXES, ChainFacts, Workload  # noqa: E402

from electrumx.regtest.cache import load_or_generate  # noqa: E402
from electrumx.regtest.workload import WorkloadParams  # noqa: E402

DRAWS = 40_000


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    # A scaled-down mainnet shape whose two hot scripts pass the light mix's 5,000 txs.
    params = WorkloadParams(blocks=40, txs=20_000, seed=2, shape="mainnet",
                            hot_txs=(6_000, 7_500), sample=300)
    return ChainFacts(load_or_generate(params, str(tmp_path_factory.mktemp("cache"))))


def test_light_mix_weights_are_as_documented():
    assert dict(LIGHT_MIX) == {
        "blockchain.scripthash.get_history": 20, "blockchain.scripthash.get_balance": 20,
        "blockchain.scripthash.listunspent": 15, "blockchain.scripthash.subscribe": 15,
        "blockchain.transaction.get": 15, "blockchain.transaction.get_merkle": 10,
        "blockchain.block.header": 3, "blockchain.block.headers": 2}
    assert MIXES["light"].heavy_share == 0.05 and MIXES["light"].heavy_txs == 5_000


def test_light_mix_draws_methods_and_heavy_scripts_in_proportion(facts):
    workload = Workload(facts, MIXES["light"], random.Random(3))
    assert len(workload.heavy) == 2
    methods, heavy, script_requests = Counter(), 0, 0
    for _ in range(DRAWS):
        label, method, params = workload.next_request()
        methods[method] += 1
        if method.startswith("blockchain.scripthash."):
            script_requests += 1
            length = facts.length.get(params[0], 0)
            if label.endswith("(5k+ txs)"):
                heavy += 1
                assert 5_000 <= length
            else:
                assert length < 5_000
    for method, weight in LIGHT_MIX:
        assert abs(methods[method] / DRAWS - weight / 100) < 0.01, method
    assert 0.04 < heavy / script_requests < 0.06
