"""Hash functions and the hex conventions of Bitcoin-like chains.

Hashes travel in "internal" byte order (as they are hashed and stored) and are
shown to people in reversed hex ("display" order).  Keeping the two names apart
avoids the classic off-by-reversal bugs.
"""

from hashlib import sha256 as _sha256

HASHX_LEN = 11
"""Bytes of sha256(script) kept as the index key of a script (see REFERENCE §5.1)."""


def sha256(data: bytes) -> bytes:
    """Single SHA-256 digest."""
    return _sha256(data).digest()


def double_sha256(data: bytes) -> bytes:
    """SHA-256 of SHA-256: block hashes, txids and merkle nodes."""
    return _sha256(_sha256(data).digest()).digest()


def hash_to_hex_str(hash_: bytes) -> str:
    """Display hex of an internal-order hash (reversed)."""
    return hash_[::-1].hex()


def hex_str_to_hash(hex_str: str) -> bytes:
    """Internal-order hash from display hex; raises ValueError on bad hex."""
    return bytes.fromhex(hex_str)[::-1]


def hashX_from_script(script: bytes) -> bytes:
    """The index key of an output script: the first 11 bytes of its SHA-256."""
    return _sha256(script).digest()[:HASHX_LEN]


def scripthash_from_script(script: bytes) -> str:
    """The Electrum protocol's script hash: SHA-256 of the script, reversed hex."""
    return _sha256(script).digest()[::-1].hex()


def hashX_from_scripthash(scripthash: str) -> bytes:
    """Map a client's script hash to the index key.

    Raises ValueError unless it is 64 hex digits.
    """
    if not isinstance(scripthash, str) or len(scripthash) != 64:
        raise ValueError(f"{scripthash!r} is not a valid script hash")
    return bytes.fromhex(scripthash)[::-1][:HASHX_LEN]
