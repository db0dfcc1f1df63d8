"""The generated chain is structurally valid, and its expected answers are right."""

from collections import defaultdict

from electrumx.chain.block import Header, header_hash
from electrumx.chain.hashes import double_sha256, hash_to_hex_str, scripthash_from_script
from electrumx.chain.merkle import merkle_root
from electrumx.chain.script import classify, is_unspendable
from electrumx.chain.tx import deserialize_block_txs
from electrumx.coins import BitcoinRegtest
from electrumx.regtest.chain import bip34_height, genesis_block
from electrumx.regtest.workload import WorkloadParams, generate
from tests.fixtures.regtest import tiny_chain


def test_genesis_is_the_real_regtest_genesis():
    assert hash_to_hex_str(header_hash(genesis_block())) == BitcoinRegtest.GENESIS_HASH


def test_structure(tmp_path_factory):
    blocks, _expected = tiny_chain(tmp_path_factory)
    prev = bytes(32)
    segwit_blocks = 0
    for height, raw in enumerate(blocks):
        header = Header(raw)
        assert header.prev_hash == prev and header.bits == 0x207FFFFF
        assert header.meets_target()
        txs = deserialize_block_txs(raw)
        assert merkle_root([tx.txid for tx in txs]) == header.merkle_root
        if height:
            assert txs[0].inputs[0].script.startswith(bip34_height(height))
        if any(tx.has_witness for tx in txs[1:]):
            segwit_blocks += 1
            wtxids = [bytes(32)] + [tx.wtxid for tx in txs[1:]]
            reserved = txs[0].inputs[0].witness[0]
            commitment = double_sha256(merkle_root(wtxids) + reserved)
            assert any(o.script == b"\x6a\x24\xaa\x21\xa9\xed" + commitment
                       for o in txs[0].outputs)
        prev = header.hash
    assert segwit_blocks > 5


def test_workload_shape():
    blocks, expected = generate(WorkloadParams.preset("small"))
    kinds = set()
    big_fanout = big_consolidation = 0
    for raw in blocks[1:]:
        for tx in deserialize_block_txs(raw)[1:]:
            big_fanout += len(tx.outputs) >= 100
            big_consolidation += len(tx.inputs) >= 50
            for out in tx.outputs:
                kinds.add(classify(out.script)[0])
    assert {"p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "p2pk", "nulldata"} <= kinds
    assert big_fanout and big_consolidation
    longest = max(len(e["history"]) for e in expected.as_json().values())
    assert longest > 1000


def test_expected_answers_agree_with_an_independent_recount(tmp_path_factory):
    """Recount history, balance and UTXOs straight from the raw blocks."""
    blocks, expected = tiny_chain(tmp_path_factory)
    history = defaultdict(list)
    utxos = {}
    for height, raw in enumerate(blocks):
        if height == 0:
            continue                              # the genesis coinbase is not indexed
        for tx in deserialize_block_txs(raw):
            touched = []
            for txin in tx.inputs:
                if not tx.is_coinbase:
                    touched.append(utxos.pop(txin.prevout)[0])
            for idx, out in enumerate(tx.outputs):
                if not is_unspendable(out.script):
                    sh = scripthash_from_script(out.script)
                    touched.append(sh)
                    utxos[tx.txid + idx.to_bytes(4, "little")] = (sh, height, out.value)
            for sh in dict.fromkeys(touched):
                history[sh].append([tx.txid_hex, height])
    for sh, want in expected.items():
        assert history[sh] == want["history"]
        mine = sorted([[hash_to_hex_str(p[:32]), int.from_bytes(p[32:], "little"), h, v]
                       for p, (s, h, v) in utxos.items() if s == sh],
                      key=lambda u: (u[2], u[0], u[1]))
        assert mine == want["utxos"]
        assert sum(u[3] for u in mine) == want["balance"]


def test_generation_is_deterministic():
    a, _ = generate(WorkloadParams(blocks=10, txs=60, seed=7))
    b, _ = generate(WorkloadParams(blocks=10, txs=60, seed=7))
    c, _ = generate(WorkloadParams(blocks=10, txs=60, seed=8))
    assert a == b and a != c
