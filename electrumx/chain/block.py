"""Block headers: fields, hashes and proof-of-work."""

from struct import Struct

from electrumx.chain.hashes import double_sha256, hash_to_hex_str
from electrumx.chain.tx import HEADER_LEN

_HEADER = Struct("<i32s32sIII")


class Header:
    """The six fields of an 80-byte header, and its hash."""

    __slots__ = ("version", "prev_hash", "merkle_root", "timestamp", "bits", "nonce", "hash")
    version: int
    prev_hash: bytes
    merkle_root: bytes
    timestamp: int
    bits: int
    nonce: int
    hash: bytes

    def __init__(self, raw: bytes):
        if len(raw) < HEADER_LEN:
            raise ValueError(f"a header is {HEADER_LEN} bytes, got {len(raw)}")
        (self.version, self.prev_hash, self.merkle_root, self.timestamp, self.bits,
         self.nonce) = _HEADER.unpack_from(raw)
        self.hash = double_sha256(raw[:HEADER_LEN])

    @property
    def target(self) -> int:
        return bits_to_target(self.bits)

    def meets_target(self) -> bool:
        """True if the header's hash is at or below the target its bits claim."""
        return int.from_bytes(self.hash, "little") <= self.target

    def to_dict(self) -> dict[str, int | str]:
        """The header fields as bitcoind's getblockheader shows them."""
        return {
            "hash": hash_to_hex_str(self.hash),
            "version": self.version,
            "versionHex": f"{self.version & 0xffffffff:08x}",
            "merkleroot": hash_to_hex_str(self.merkle_root),
            "time": self.timestamp,
            "nonce": self.nonce,
            "bits": f"{self.bits:08x}",
            "previousblockhash": hash_to_hex_str(self.prev_hash),
        }


def pack_header(version: int, prev_hash: bytes, merkle_root: bytes, timestamp: int, bits: int,
                nonce: int) -> bytes:
    """Serialise header fields (hashes in internal order)."""
    return _HEADER.pack(version, prev_hash, merkle_root, timestamp, bits, nonce)


def header_hash(raw_header: bytes) -> bytes:
    """Internal-order hash of a raw header (only its first 80 bytes count)."""
    return double_sha256(raw_header[:HEADER_LEN])


def header_prev_hash(raw_header: bytes) -> bytes:
    """Internal-order hash of the previous block, read straight from the bytes."""
    return raw_header[4:36]


def bits_to_target(bits: int) -> int:
    """The compact nBits encoding expanded to the full 256-bit target."""
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))
