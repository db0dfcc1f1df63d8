"""The node on a cached chain reads its blocks from disk when it serves them.

What it answers must be byte for byte what the cache's file holds (read the
old way, whole, by `read_blocks`), mined and reorganised blocks included;
what it keeps in memory must follow the block count (an offset and a length
each) and, for its txindex, a few bytes a transaction, not the chain's bytes.
"""

import os
import tracemalloc

import pytest
from twisted.internet.task import Clock

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.tx import deserialize_block_txs
from electrumx.regtest.cache import BlockFile, block_record, read_blocks
from electrumx.regtest.chainblocks import BlockTxs
from electrumx.regtest.node import NodeError, RegtestNode
from electrumx.regtest.rpc_methods import BitcoindMethods
from electrumx.regtest.txindex import TxIndex
from tests.fixtures.regtest import tiny_chain


@pytest.fixture
def small(tmp_path_factory):
    """(BlockFile of the small preset, its blocks as read_blocks reads them)."""
    blocks = tiny_chain(tmp_path_factory, "small").blocks
    assert isinstance(blocks, BlockFile)
    with open(blocks.path, "rb") as f:
        return blocks, read_blocks(f)


def rpc_on(blocks, txindex=True):
    node = RegtestNode(blocks, None, Clock(), txindex=txindex)
    return node, BitcoindMethods(node, Clock())


def test_a_block_file_reads_what_read_blocks_reads(small, tmp_path):
    blocks, whole = small
    assert len(blocks) == len(whole) and list(blocks) == whole
    assert blocks[-1] == whole[-1] and blocks[3:6] == whole[3:6]
    for height in (0, 1, len(whole) // 2, len(whole) - 1):
        raw = whole[height]
        assert blocks.header(height) == raw[:80] and blocks.size(height) == len(raw)
        assert blocks.read(height, 81, 200) == raw[81:200]
    # A last record cut short (a writer killed mid-append) is left out, as read_blocks does.
    path = tmp_path / "blocks.bin"
    path.write_bytes(b"".join(map(block_record, whole[:3])) + block_record(whole[3])[:-1])
    assert list(BlockFile(str(path))) == whole[:3]


def test_blocks_headers_and_transactions_are_served_as_the_file_holds_them(small):
    blocks, whole = small
    node, rpc = rpc_on(blocks)
    assert rpc.getblockchaininfo()["size_on_disk"] == sum(map(len, whole))
    for height in range(0, len(whole), 7):
        raw = whole[height]
        block_hash = rpc.getblockhash(height)
        assert rpc.getblock(block_hash, 0) == raw.hex()
        assert rpc.getblockheader(block_hash, False) == raw[:80].hex()
        for tx in deserialize_block_txs(raw)[::5]:
            expected = tx.serialize().hex()
            assert rpc.getrawtransaction(tx.txid_hex, 0, block_hash) == expected
            assert rpc.getrawtransaction(tx.txid_hex) == expected
    # A txid sharing its first 8 bytes with a real one is not that transaction.
    txid = deserialize_block_txs(whole[50])[1].txid
    for rpc_call in (lambda t: rpc.getrawtransaction(t),
                     lambda t: rpc.getrawtransaction(t, 0, rpc.getblockhash(50))):
        with pytest.raises(NodeError):
            rpc_call(hash_to_hex_str(txid[:8] + bytes(24)))


def test_mined_and_reorganised_blocks_on_a_file_are_served_whole(small):
    blocks, whole = small
    node, rpc = rpc_on(blocks)
    tip = len(whole) - 1
    mined = node.mine(2, random_txs=3)
    stale_hashes = [hash_to_hex_str(h) for h in node.hashes[tip - 2:tip + 3]]
    node.reorg(4)                                # two mined blocks and two of the file's
    assert node.height == tip + 3 and len(node.blocks) == tip + 4
    for hex_hash, raw in zip(stale_hashes[:3], whole[tip - 2:]):
        assert rpc.getblock(hex_hash, 0) == raw.hex()                    # below the fork
    stale_raw = whole[tip - 1]
    stale_tx = deserialize_block_txs(stale_raw)[1]
    assert rpc.getrawtransaction(stale_tx.txid_hex, 1, stale_hashes[1])["in_active_chain"] \
        is False
    assert bytes.fromhex(rpc.getblock(hash_to_hex_str(mined[0]), 0))[:80] == \
        node.stale_blocks[mined[0]][:80]
    for height in range(tip - 1, tip + 4):      # the new branch, from memory
        raw = node.blocks[height]
        assert rpc.getblock(rpc.getblockhash(height), 0) == raw.hex()
        coinbase = deserialize_block_txs(raw)[0]
        assert rpc.getrawtransaction(coinbase.txid_hex) == coinbase.serialize().hex()
    # Rewound below the branch and shown again: the index is rebuilt from the file.
    node.rewind(10)
    assert node.reveal(tip - 2) == tip - 2
    tx = deserialize_block_txs(whole[tip - 3])[2]
    assert rpc.getrawtransaction(tx.txid_hex, 1)["blockhash"] == rpc.getblockhash(tip - 3)


def test_what_the_node_keeps_follows_the_block_count_not_the_bytes(small):
    blocks, whole = small
    file_bytes = os.path.getsize(blocks.path)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        node, rpc = rpc_on(BlockFile(blocks.path))
        opened = tracemalloc.get_traced_memory()[0] - before
        tx_count = sum(len(deserialize_block_txs(raw)) for raw in whole)
        rpc.getrawtransaction(deserialize_block_txs(whole[-1])[-1].txid_hex)   # builds it
        indexed = tracemalloc.get_traced_memory()[0] - before - opened
    finally:
        tracemalloc.stop()
    assert opened < 1_000 * len(whole) < file_bytes / 10
    # A dict of txids would take some 250 bytes a transaction; the arrays about 25.
    assert indexed < 50 * tx_count, (indexed, tx_count)


def test_the_tx_index_cuts_at_a_height_and_finds_again():
    txids = [bytes([n]) * 32 for n in range(1, 9)]
    at = {}
    index = TxIndex()
    for height, chunk in enumerate((txids[:3], txids[3:5], txids[5:])):
        rows = []
        for n, txid in enumerate(chunk):
            rows.append((txid, 81 + 10 * n, 91 + 10 * n))
            at[(height, 81 + 10 * n, 91 + 10 * n)] = txid
        index.add_block(rows)
    def txid_of(*where):
        return at[where]
    assert index.get(txids[4], txid_of) == (1, 91, 101)
    index.truncate(1)
    assert len(index) == 1 and index.tx_count == 3
    assert index.get(txids[4], txid_of) is None and index.get(txids[0], txid_of) == (0, 81, 91)
    # A later block reuses the numbers freed: what it holds is found, not what was cut.
    index.add_block([(txids[7], 81, 91), (txids[3], 91, 101)])
    at.update({(1, 81, 91): txids[7], (1, 91, 101): txids[3]})
    assert index.get(txids[4], txid_of) is None
    assert index.get(txids[3], txid_of) == (1, 91, 101)
    # Many more: the table grows and every one is still found.
    many = [n.to_bytes(32, "little") for n in range(100, 5_100)]
    index.add_block([(txid, 81 + n, 82 + n) for n, txid in enumerate(many)])
    at.update({(2, 81 + n, 82 + n): txid for n, txid in enumerate(many)})
    assert all(index.get(txid, txid_of) == (2, 81 + n, 82 + n) for n, txid in enumerate(many))


def test_block_positions_match_only_whole_txids(small):
    raw = small[1][60]
    positions = BlockTxs(raw)
    txs = deserialize_block_txs(raw)
    start, end = positions.find(txs[1].txid)
    assert raw[start:end] == txs[1].serialize()
    # The bytes of two neighbouring txids, read across their boundary, are no txid.
    straddling = txs[0].txid[16:] + txs[1].txid[:16]
    assert positions.find(straddling) is None and positions.find(b"short") is None
