"""The Electrum status of a script: a digest of its history (REFERENCE §1.6).

Both sides compute it: the read API hashes the confirmed part (and keeps that
hasher for busy scripts), the subscription registry adds the mempool part.
The format lives here, below both, so neither has to import the other.
"""

from hashlib import sha256

from electrumx.chain.hashes import hash_to_hex_str


def status_text(history) -> bytes:
    """The text an Electrum status hashes: "txid:height:" per (txid, height) entry."""
    return "".join(f"{hash_to_hex_str(txid)}:{height:d}:" for txid, height in history).encode()


def status_hash(history):
    """The Electrum status of a script as a 32-byte digest, or None without history.

    `history` is the confirmed (txid, height) pairs in chain order followed by
    the mempool ones in protocol order (REFERENCE §1.6); txids are internal order.
    """
    return sha256(status_text(history)).digest() if history else None
