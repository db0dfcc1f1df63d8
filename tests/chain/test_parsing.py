"""Real blocks and transactions from tests/data parse to exactly what was recorded."""

import pytest
from hypothesis import given, settings, strategies as st

from electrumx.chain.block import Header
from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.merkle import branch_and_root, merkle_root, root_from_branch
from electrumx.chain.tx import ParseError, Tx, deserialize_block_txs
from electrumx.coins import (Bitcoin, BitcoinRegtest, BitcoinSignet, BitcoinTestnet,
                             BitcoinTestnet4, Litecoin)
from tests.conftest import load_testdata

BLOCKS = load_testdata("blocks")
TRANSACTIONS = load_testdata("transactions")
COINS = {"bitcoin_mainnet": Bitcoin, "bitcoin_signet": BitcoinSignet,
         "bitcoin_testnet4": BitcoinTestnet4, "bitcoin_testnet": BitcoinTestnet,
         "bitcoin_regtest": BitcoinRegtest, "litecoin_mainnet": Litecoin}


def coin_for(name):
    return next(coin for prefix, coin in COINS.items() if name.startswith(prefix))


def test_testdata_is_present():
    assert len(BLOCKS) >= 5 and len(TRANSACTIONS) >= 3


@pytest.mark.parametrize("name, data", BLOCKS, ids=[n for n, _ in BLOCKS])
def test_block_fast_path(name, data):
    coin = coin_for(name)
    raw = bytes.fromhex(data["block"])
    header = Header(raw)
    assert hash_to_hex_str(header.hash) == data["hash"]
    assert hash_to_hex_str(header.prev_hash) == data["previousblockhash"]
    assert hash_to_hex_str(header.merkle_root) == data["merkleroot"]
    txs = coin.parse_block_txs(raw)
    assert [hash_to_hex_str(txid) for txid, _p, _o in txs] == data["tx"]
    assert hash_to_hex_str(merkle_root([txid for txid, _p, _o in txs])) == data["merkleroot"]
    assert txs[0][1] == []                      # the coinbase spends nothing


@pytest.mark.parametrize("name, data", BLOCKS, ids=[n for n, _ in BLOCKS])
def test_block_full_path_agrees(name, data):
    coin = coin_for(name)
    raw = bytes.fromhex(data["block"])
    full = deserialize_block_txs(raw, allowed_flags=coin.TX_FLAGS)
    fast = coin.parse_block_txs(raw)
    assert [tx.txid for tx in full] == [txid for txid, _p, _o in fast]
    for tx, (_txid, prevouts, outputs) in zip(full, fast):
        assert [(o.value, o.script) for o in tx.outputs] == outputs
        if not tx.is_coinbase:
            assert [i.prevout for i in tx.inputs] == prevouts


@pytest.mark.parametrize("name, data", BLOCKS, ids=[n for n, _ in BLOCKS])
def test_merkle_branches_prove_positions(name, data):
    txids = [bytes.fromhex(t)[::-1] for t in data["tx"]]
    root = bytes.fromhex(data["merkleroot"])[::-1]
    for index in {0, len(txids) // 2, len(txids) - 1}:
        branch, computed = branch_and_root(txids, index)
        assert computed == root
        assert root_from_branch(txids[index], index, branch) == root


@pytest.mark.parametrize("name, data", TRANSACTIONS, ids=[n for n, _ in TRANSACTIONS])
def test_transactions(name, data):
    coin = coin_for(name)
    raw = bytes.fromhex(data["hex"])
    tx = coin.deserialize_tx(raw)
    assert tx.txid_hex == data["txid"]
    assert hash_to_hex_str(tx.wtxid) == data["hash"]
    assert (tx.size, tx.vsize, tx.weight) == (data["size"], data["vsize"], data["weight"])
    assert tx.serialize() == raw
    assert tx.version == data["version"] and tx.locktime == data["locktime"]
    for txin, vin in zip(tx.inputs, data["vin"]):
        assert hash_to_hex_str(txin.prev_hash) == vin["txid"] and txin.prev_idx == vin["vout"]
        assert [w.hex() for w in txin.witness] == vin.get("txinwitness", [])
    for txout, vout in zip(tx.outputs, data["vout"]):
        assert txout.value == round(vout["value"] * 100_000_000)
        assert txout.script.hex() == vout["scriptPubKey"]["hex"]
        address = vout["scriptPubKey"].get("address")
        if address:
            assert coin.script_to_address(txout.script) == address


@pytest.mark.parametrize("name, data", BLOCKS[:3], ids=[n for n, _ in BLOCKS[:3]])
def test_truncated_blocks_are_parse_errors(name, data):
    coin = coin_for(name)
    raw = bytes.fromhex(data["block"])
    for cut in range(81, len(raw), max(1, len(raw) // 97)):
        with pytest.raises(ParseError):
            coin.parse_block_txs(raw[:cut])


def test_flags_not_allowed_on_the_coin_are_refused():
    ltc = dict(BLOCKS)["litecoin_mainnet_2265985"]
    with pytest.raises(ParseError, match="not allowed"):
        Bitcoin.parse_block_txs(bytes.fromhex(ltc["block"]))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=400))
def test_garbage_never_escapes_as_another_exception(data):
    for parse in (lambda b: Bitcoin.parse_block_txs(bytes(80) + b),
                  lambda b: Tx.from_bytes(b)):
        try:
            parse(data)
        except ParseError:
            pass
