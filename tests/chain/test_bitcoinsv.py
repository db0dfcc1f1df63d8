"""The BitcoinSV coin: its networks, no segwit, and which outputs it indexes.

Its addresses are in the tables of tests/chain/test_addresses.py.
"""

import pytest

from electrumx.chain import script as S
from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.tx import ParseError, Tx, TxInput, TxOutput
from electrumx.coins import (Bitcoin, BitcoinSV, BitcoinSVRegtest, BitcoinSVTestnet,
                             lookup_coin)
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.db import IndexDB
from tests.fixtures.blocks import ChainBuilder, coinbase, script_for, spend


@pytest.mark.parametrize("net, cls, genesis, chain, rpc_port", [
    ("mainnet", BitcoinSV,
     "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f", "main", 8332),
    ("testnet", BitcoinSVTestnet,
     "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943", "test", 18332),
    ("regtest", BitcoinSVRegtest,
     "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206", "regtest", 18332),
])
def test_networks(net, cls, genesis, chain, rpc_port):
    assert lookup_coin("BitcoinSV", net) is cls
    assert lookup_coin("bitcoinsv", net) is cls
    assert cls.GENESIS_HASH == genesis
    assert hash_to_hex_str(cls.genesis_hash()) == genesis
    assert cls.DAEMON_CHAIN == chain
    assert cls.RPC_PORT == rpc_port
    assert cls.SEGWIT_HRP == "" and cls.TX_FLAGS == 0


def test_segwit_transactions_are_refused():
    tx = Tx(2, [TxInput(b"\x11" * 32, 0, b"", 0xFFFFFFFF, [b"\x22" * 72])],
            [TxOutput(1000, script_for(1))], 0, flag=1)
    raw = tx.serialize()
    assert Bitcoin.deserialize_tx(raw).txid == tx.txid
    with pytest.raises(ParseError, match="not allowed"):
        BitcoinSV.deserialize_tx(raw)


def test_only_op_false_op_return_is_unspendable():
    op_return = S.null_data_script(b"data")
    false_return = b"\x00" + op_return
    assert Bitcoin.is_unspendable(op_return)
    assert not BitcoinSV.is_unspendable(op_return)      # spendable since Genesis
    assert BitcoinSV.is_unspendable(false_return)
    assert not BitcoinSV.is_unspendable(b"\x51" * 20_000)   # no script size limit
    assert Bitcoin.is_unspendable(b"\x51" * 20_000)


def test_index_follows_a_spent_op_return_output(tmp_path):
    """A post-Genesis block spending an OP_RETURN output: the index must have that output."""
    op_return = S.null_data_script(b"spendable")
    chain = ChainBuilder()
    chain.add_block([coinbase(0, [(50, script_for(0))])])
    funding = coinbase(1, [(50, op_return), (0, b"\x00" + op_return)])
    chain.add_block([funding])
    spender = spend([(funding.txid, 0)], [(49, script_for(2))])
    chain.add_block([coinbase(2, [(50, script_for(3))]), spender])
    db = IndexDB(str(tmp_path), BitcoinSVRegtest)
    db.open()
    try:
        bp = BlockProcessor(db, reorg_limit=10)
        for raw in chain.blocks:
            bp.advance_block(raw)
        bp.flush(first_sync=False)
        assert db.height == 2
        spent_to = BitcoinSVRegtest.hashX_from_script(script_for(2))
        assert [u[-1] for u in db.utxos(spent_to)] == [49]
        assert db.utxos(BitcoinSVRegtest.hashX_from_script(op_return)) == []
        assert db.utxos(BitcoinSVRegtest.hashX_from_script(b"\x00" + op_return)) == []
    finally:
        db.close()
