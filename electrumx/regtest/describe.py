"""bitcoind's verbose JSON shapes for blocks, headers, transactions and mempool entries.

Pure functions from bytes and node state to the dicts bitcoind's RPCs
return, so the method handlers stay short and these shapes can be checked
on their own.
"""

import statistics

from electrumx.chain.block import Header
from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.script import classify
from electrumx.chain.tx import deserialize_block_txs
from electrumx.coins import BitcoinRegtest

# The difficulty bitcoind reports for nBits 0x207fffff, and the work each such block adds.
REGTEST_DIFFICULTY = 4.656542373906925e-10
WORK_PER_BLOCK = 2
_SCRIPT_TYPES = {
    "p2pkh": "pubkeyhash", "p2sh": "scripthash", "p2pk": "pubkey", "nulldata": "nulldata",
    "p2wpkh": "witness_v0_keyhash", "p2wsh": "witness_v0_scripthash",
    "p2tr": "witness_v1_taproot", "witness_unknown": "witness_unknown",
    "nonstandard": "nonstandard",
}


def btc(satoshis: int) -> float:
    return satoshis / 100_000_000


def header_dict(node, raw: bytes, height: int, n_tx: int) -> dict:
    """getblockheader's verbose answer for a block at `height` (-1: not in the active chain)."""
    header = Header(raw)
    info = {
        "hash": hash_to_hex_str(header.hash),
        "confirmations": node.confirmations(height),
        "height": height,
        "version": header.version,
        "versionHex": f"{header.version & 0xffffffff:08x}",
        "merkleroot": hash_to_hex_str(header.merkle_root),
        "time": header.timestamp,
        "mediantime": median_time(node, height) if height >= 0 else header.timestamp,
        "nonce": header.nonce,
        "bits": f"{header.bits:08x}",
        "difficulty": REGTEST_DIFFICULTY,
        "chainwork": f"{WORK_PER_BLOCK * (max(height, 0) + 1):064x}",
        "nTx": n_tx,
    }
    if header.prev_hash != bytes(32):
        info["previousblockhash"] = hash_to_hex_str(header.prev_hash)
    if 0 <= height < node.height:
        info["nextblockhash"] = hash_to_hex_str(node.hashes[height + 1])
    return info


def median_time(node, height: int) -> int:
    """The median timestamp of the 11 blocks ending at `height` (BIP113)."""
    first = max(0, height - 10)
    return int(statistics.median_low(node.header(h).timestamp
                                     for h in range(first, height + 1)))


def block_dict(node, raw: bytes, height: int, verbosity: int) -> dict:
    """getblock's answer at verbosity 1 (txids) or 2 (transaction dicts)."""
    txs = deserialize_block_txs(raw)
    info = header_dict(node, raw, height, len(txs))
    stripped = len(raw) - sum(tx.size - len(tx.serialize_legacy()) for tx in txs)
    info.update(size=len(raw), strippedsize=stripped, weight=3 * stripped + len(raw))
    if verbosity >= 2:
        info["tx"] = [tx_dict(tx, tx.serialize()) for tx in txs]
    else:
        info["tx"] = [tx.txid_hex for tx in txs]
    return info


def tx_dict(tx, raw: bytes) -> dict:
    """getrawtransaction's verbose answer, without the block fields."""
    return {
        "txid": tx.txid_hex,
        "hash": hash_to_hex_str(tx.wtxid),
        "version": tx.version,
        "size": tx.size,
        "vsize": tx.vsize,
        "weight": tx.weight,
        "locktime": tx.locktime,
        "vin": [_input_dict(txin, tx.is_coinbase) for txin in tx.inputs],
        "vout": [_output_dict(n, out) for n, out in enumerate(tx.outputs)],
        "hex": raw.hex(),
    }


def _input_dict(txin, coinbase: bool) -> dict:
    if coinbase:
        info = {"coinbase": txin.script.hex()}
    else:
        info = {"txid": hash_to_hex_str(txin.prev_hash), "vout": txin.prev_idx,
                "scriptSig": {"asm": "", "hex": txin.script.hex()}}
    if txin.witness:
        info["txinwitness"] = [item.hex() for item in txin.witness]
    info["sequence"] = txin.sequence
    return info


def _output_dict(n: int, out) -> dict:
    kind = classify(out.script)[0]
    script = {"asm": "", "desc": "", "hex": out.script.hex(), "type": _SCRIPT_TYPES[kind]}
    address = BitcoinRegtest.script_to_address(out.script)
    if address:
        script["address"] = address
    return {"value": btc(out.value), "n": n, "scriptPubKey": script}


def mempool_entry(node, txid: bytes) -> dict:
    """getrawmempool's verbose entry (and getmempoolentry's answer) for a mempool tx."""
    pool = node.mempool
    tx = pool.txs[txid]
    ancestors = _ancestors(pool, txid)
    descendants = pool.with_descendants({txid})
    fee = pool.fees[txid]
    return {
        "vsize": tx.vsize,
        "weight": tx.weight,
        "time": int(pool.times[txid]),
        "height": node.height,
        "descendantcount": len(descendants),
        "descendantsize": sum(pool.txs[t].vsize for t in descendants),
        "ancestorcount": len(ancestors) + 1,
        "ancestorsize": tx.vsize + sum(pool.txs[t].vsize for t in ancestors),
        "wtxid": hash_to_hex_str(tx.wtxid),
        "fees": {"base": btc(fee), "modified": btc(fee),
                 "ancestor": btc(fee + sum(pool.fees[t] for t in ancestors)),
                 "descendant": btc(sum(pool.fees[t] for t in descendants))},
        "depends": sorted({hash_to_hex_str(i.prev_hash) for i in tx.inputs
                           if i.prev_hash in pool}),
        "spentby": sorted(hash_to_hex_str(t) for t in pool.children(txid)),
        "bip125-replaceable": True,
        "unbroadcast": False,
    }


def _ancestors(pool, txid):
    found = set()
    todo = [txid]
    while todo:
        for txin in pool.txs[todo.pop()].inputs:
            parent = txin.prev_hash
            if parent in pool and parent not in found:
                found.add(parent)
                todo.append(parent)
    return found
