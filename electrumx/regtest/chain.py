"""Building regtest blocks: the genesis block, coinbases, witness commitments, proof of work.

Everything here makes structurally valid Bitcoin regtest blocks: headers
that link, merkle roots that match, the BIP34 height in every coinbase, the
BIP141 witness commitment when a block has segwit transactions, and a nonce
ground until the header meets the regtest target.  Signatures do not verify;
nothing on our side checks them.
"""

from electrumx.chain.block import Header, pack_header
from electrumx.chain.hashes import double_sha256, hash_to_hex_str
from electrumx.chain.merkle import merkle_root
from electrumx.chain.tx import Tx, TxInput, TxOutput, WITNESS_FLAG, pack_varint

REGTEST_BITS = 0x207FFFFF
GENESIS_HASH = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
GENESIS_TIME = 1296688602
_GENESIS_TX = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04"
    "ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e20"
    "6272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01"
    "000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4c"
    "ef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000")
WITNESS_RESERVED = bytes(32)
COMMITMENT_HEADER = bytes.fromhex("6a24aa21a9ed")
SUBSIDY = 50 * 100_000_000
HALVING_INTERVAL = 150


def genesis_block() -> bytes:
    """The real regtest genesis block, rebuilt byte for byte (hash 0f9188f1...2206)."""
    tx = Tx.from_bytes(_GENESIS_TX)
    header = pack_header(1, bytes(32), tx.txid, GENESIS_TIME, REGTEST_BITS, 2)
    if hash_to_hex_str(double_sha256(header)) != GENESIS_HASH:
        raise RuntimeError("the rebuilt regtest genesis block has the wrong hash")
    return header + pack_varint(1) + _GENESIS_TX


def subsidy(height: int) -> int:
    """The regtest block reward (halving every 150 blocks)."""
    halvings = height // HALVING_INTERVAL
    return SUBSIDY >> halvings if halvings < 64 else 0


def bip34_height(height: int) -> bytes:
    """The coinbase script prefix pushing the block height (BIP34)."""
    if height == 0:
        return b"\x00"
    if 1 <= height <= 16:
        return bytes((0x50 + height,))
    n = height.to_bytes((height.bit_length() + 8) // 8, "little")
    return bytes((len(n),)) + n


def coinbase_tx(height: int, payouts, tag: bytes = b"") -> Tx:
    """A coinbase paying `payouts` [(value, script)], with BIP34 height and a witness slot."""
    script_sig = bip34_height(height) + b"\x08txelx" + tag
    if len(script_sig) < 2:
        script_sig += b"\x00"
    txin = TxInput(bytes(32), 0xFFFFFFFF, script_sig, 0xFFFFFFFF, [WITNESS_RESERVED])
    return Tx(2, [txin], [TxOutput(v, s) for v, s in payouts], 0, WITNESS_FLAG)


def witness_commitment_script(txs) -> bytes:
    """BIP141: OP_RETURN aa21a9ed + sha256d(witness root || reserved value)."""
    wtxids = [bytes(32)] + [tx.wtxid for tx in txs[1:]]
    return COMMITMENT_HEADER + double_sha256(merkle_root(wtxids) + WITNESS_RESERVED)


def assemble_block(prev_hash: bytes, timestamp: int, coinbase: Tx, txs) -> bytes:
    """A mined block: commitment added to the coinbase, merkle root, nonce ground."""
    all_txs = [coinbase] + list(txs)
    if any(tx.has_witness for tx in txs):
        coinbase.outputs.append(TxOutput(0, witness_commitment_script(all_txs)))
        coinbase._raw = coinbase._txid = None
    else:
        coinbase.flag = 0
        coinbase.inputs[0].witness = ()
    root = merkle_root([tx.txid for tx in all_txs])
    nonce = 0
    while True:
        header = pack_header(0x20000000, prev_hash, root, timestamp, REGTEST_BITS, nonce)
        if Header(header).meets_target():
            break
        nonce += 1
    return header + pack_varint(len(all_txs)) + b"".join(tx.serialize() for tx in all_txs)
