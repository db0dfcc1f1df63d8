"""The generated chain is structurally valid, realistic, and its expected answers are right."""

import os
from collections import defaultdict

import pytest

from electrumx.chain.block import Header, header_hash
from electrumx.chain.hashes import double_sha256, hash_to_hex_str, scripthash_from_script
from electrumx.chain.merkle import merkle_root
from electrumx.chain.script import classify, is_unspendable, p2pkh_script, witness_script
from electrumx.chain.tx import deserialize_block_txs, parse_block_txs
from electrumx.coins import BitcoinRegtest
from electrumx.regtest import cache
from electrumx.regtest.chain import bip34_height, genesis_block, subsidy
from electrumx.regtest.workload import WorkloadParams, generate, generate_into
from tests.fixtures.regtest import tiny_chain


def recount(blocks):
    """History, UTXOs and fees straight from the raw blocks, as an index would see them."""
    history = defaultdict(list)
    utxos = {}
    fees = []
    for height, raw in enumerate(blocks):
        if height == 0:
            continue                              # the genesis coinbase is not indexed
        block_fee = 0
        for txid, prevouts, outputs in parse_block_txs(raw):
            touched = []
            value_in = 0
            for prevout in prevouts:
                sh, _h, value = utxos.pop(prevout)
                touched.append(sh)
                value_in += value
            for idx, (value, script) in enumerate(outputs):
                if not is_unspendable(script):
                    sh = scripthash_from_script(script)
                    touched.append(sh)
                    utxos[txid + idx.to_bytes(4, "little")] = (sh, height, value)
            if prevouts:
                block_fee += value_in - sum(v for v, _s in outputs)
            for sh in dict.fromkeys(touched):
                history[sh].append([hash_to_hex_str(txid), height])
        fees.append(block_fee)
    return history, utxos, fees


def assert_expected_matches(expected, blocks):
    history, utxos, _fees = recount(blocks)
    for sh, want in expected.items():
        assert history[sh] == want["history"]
        mine = sorted([[hash_to_hex_str(p[:32]), int.from_bytes(p[32:], "little"), h, v]
                       for p, (s, h, v) in utxos.items() if s == sh],
                      key=lambda u: (u[2], u[0], u[1]))
        assert mine == want["utxos"]
        assert sum(u[3] for u in mine) == want["balance"]
    return history


def test_genesis_is_the_real_regtest_genesis():
    raw = genesis_block()
    assert hash_to_hex_str(header_hash(raw)) == BitcoinRegtest.GENESIS_HASH == \
        "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    assert len(raw) == 285


def test_structure(tmp_path_factory):
    blocks, _expected = tiny_chain(tmp_path_factory)
    assert blocks[0] == genesis_block()
    prev = bytes(32)
    segwit_blocks = 0
    last_time = 0
    for height, raw in enumerate(blocks):
        header = Header(raw)
        assert header.prev_hash == prev and header.bits == 0x207FFFFF
        assert header.meets_target() and header.timestamp > last_time
        txs = deserialize_block_txs(raw)
        assert merkle_root([tx.txid for tx in txs]) == header.merkle_root
        assert b"".join(tx.serialize() for tx in txs) == raw[81:]
        if height:
            assert txs[0].is_coinbase and txs[0].inputs[0].script.startswith(
                bip34_height(height))
        if any(tx.has_witness for tx in txs[1:]):
            segwit_blocks += 1
            wtxids = [bytes(32)] + [tx.wtxid for tx in txs[1:]]
            [reserved] = txs[0].inputs[0].witness
            assert reserved == bytes(32)
            commitment = double_sha256(merkle_root(wtxids) + reserved)
            assert txs[0].outputs[-1].script == b"\x6a\x24\xaa\x21\xa9\xed" + commitment
        prev, last_time = header.hash, header.timestamp
    assert segwit_blocks > 5


def test_bip34_height_pushes():
    assert [bip34_height(h) for h in (1, 16, 17, 128, 256, 70_000)] == [
        b"\x51", b"\x60", b"\x01\x11", b"\x02\x80\x00", b"\x02\x00\x01", b"\x03\x70\x11\x01"]


def test_workload_shape(tmp_path_factory):
    blocks, expected = tiny_chain(tmp_path_factory, "small")
    kinds = set()
    big_fanout = big_consolidation = same_block_spends = 0
    sizes = []
    for raw in blocks[1:]:
        made_here = set()
        txs = deserialize_block_txs(raw)
        sizes.append(len(txs))
        for tx in txs[1:]:
            big_fanout += len(tx.outputs) >= 100
            big_consolidation += len(tx.inputs) >= 50
            same_block_spends += any(i.prev_hash in made_here for i in tx.inputs)
            made_here.add(tx.txid)
            kinds.update(classify(out.script)[0] for out in tx.outputs)
            for txin in tx.inputs:
                if txin.witness:                  # realistic sizes: ECDSA, Schnorr, or P2WSH
                    assert len(txin.witness[0]) in (0, 64, 72)
                else:
                    assert len(txin.script) in (73, 107, 146)
    assert {"p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "p2pk", "nulldata"} <= kinds
    assert big_fanout and big_consolidation and same_block_spends > 100
    assert sizes[-1] > 2 * sizes[0]                               # ramping up
    history = assert_expected_matches(expected, blocks)
    busiest = sorted(history, key=lambda sh: len(history[sh]))[-3:]
    assert set(busiest) <= set(expected)                          # the busiest are sampled
    assert len(history[busiest[-1]]) > 1000


def test_values_are_conserved(tmp_path_factory):
    blocks, _expected = tiny_chain(tmp_path_factory)
    _history, _utxos, fees = recount(blocks)
    assert fees[0] == 0 and all(fee > 0 for fee in fees[1:])    # block 1 has nothing to spend
    for height, raw in enumerate(blocks[1:], start=1):
        coinbase = deserialize_block_txs(raw)[0]
        assert sum(o.value for o in coinbase.outputs) == subsidy(height) + fees[height - 1]


def test_expected_answers_agree_with_an_independent_recount(tmp_path_factory):
    blocks, expected = tiny_chain(tmp_path_factory)
    assert_expected_matches(expected, blocks)
    assert sum(bool(e["history"]) for e in expected.values()) >= 10  # and some empty ones


def test_extra_payees_are_always_paid_and_coinbases_pay_who_is_asked():
    wallet = [witness_script(0, bytes([n]) * 20) for n in range(25)] + \
        [p2pkh_script(bytes([n]) * 20) for n in range(5)]
    miner = witness_script(0, b"\xee" * 20)
    params = WorkloadParams(blocks=6, txs=20, seed=3, extra_payees=wallet,
                            coinbase_script=miner)
    blocks, expected = generate(params)
    answers = expected.as_json()
    for script in wallet:
        answer = answers[scripthash_from_script(script)]
        assert answer["balance"] > 0 and len(answer["utxos"]) == len(answer["history"])
    coinbases = {deserialize_block_txs(raw)[0].txid_hex for raw in blocks[1:]}
    miner_history = answers[scripthash_from_script(miner)]["history"]
    assert coinbases <= {txid for txid, _height in miner_history}
    assert_expected_matches(answers, blocks)


def test_generation_is_deterministic():
    a, _ = generate(WorkloadParams(blocks=10, txs=60, seed=7))
    b, _ = generate(WorkloadParams(blocks=10, txs=60, seed=7))
    c, _ = generate(WorkloadParams(blocks=10, txs=60, seed=8))
    assert a == b and a != c


def test_bad_params_are_refused():
    with pytest.raises(ValueError, match="unknown chain size 'vast'"):
        WorkloadParams.preset("vast")
    with pytest.raises(ValueError):
        WorkloadParams(blocks=0)


def test_the_cache_is_reused_and_never_left_half_written(tmp_path, monkeypatch):
    params = WorkloadParams(blocks=4, txs=20, seed=9)
    first = cache.load_or_generate(params, str(tmp_path))
    entry = cache.cache_entry(params, str(tmp_path))
    assert os.path.isdir(entry) and os.path.basename(entry).startswith("v")

    def must_not_generate(*_args):
        raise AssertionError("generated again")
    monkeypatch.setattr(cache, "generate_into", must_not_generate)
    assert cache.load_or_generate(params, str(tmp_path)) == first
    # A generator killed half-way (here: an error while writing) leaves no entry.
    other = WorkloadParams(blocks=4, txs=20, seed=10)
    monkeypatch.setattr(cache, "generate_into", generate_into)
    monkeypatch.setattr(cache.json, "dump", lambda *_a: (_ for _ in ()).throw(OSError(28)))
    with pytest.raises(OSError):
        cache.load_or_generate(other, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(entry)]


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.default_cache_dir() == str(tmp_path / "txelectrumx" / "regtest")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.default_cache_dir() == str(tmp_path / ".cache" / "txelectrumx" / "regtest")
