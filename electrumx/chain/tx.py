"""Transactions and blocks: a fast one-pass reader for the indexer, a full one for the rest.

The indexer only needs, per transaction, its txid, the outpoints it spends and
the (value, script) pairs it creates.  `parse_block_txs` walks a raw block once
with precompiled `struct` unpackers and builds exactly those objects; scripts
of inputs and witness data are skipped by length, never copied.

`Tx.from_bytes` and `Tx.read` build the complete object (scripts, sequences,
witnesses, sizes): the regtest node, verbose `transaction.get` and the tests
use them.

Both understand legacy and segwit serialisation, and Litecoin's MWEB flag
(bit 8) on the HogEx transaction, whose extension body is empty.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from struct import Struct, error as struct_error
from typing import TypeAlias

from electrumx.chain.hashes import double_sha256, hash_to_hex_str

_U16 = Struct("<H").unpack_from
_U32 = Struct("<I").unpack_from
_U64 = Struct("<Q").unpack_from
_I32 = Struct("<i").unpack_from
_I64 = Struct("<q").unpack_from
_PACK_U16 = Struct("<H").pack
_PACK_U32 = Struct("<I").pack
_PACK_U64 = Struct("<Q").pack
_PACK_I32 = Struct("<i").pack
_PACK_I64 = Struct("<q").pack

HEADER_LEN = 80
COINBASE_PREV_HASH = bytes(32)
COINBASE_PREV_IDX = 0xFFFFFFFF
WITNESS_FLAG = 0x01
"""Serialisation flag bit of segwit transactions (BIP 144)."""
MWEB_FLAG = 0x08
"""Serialisation flag bit of Litecoin's MWEB (on the HogEx transaction)."""
SEGWIT_FLAGS = WITNESS_FLAG

IndexedTx: TypeAlias = tuple[bytes, list[bytes], list[tuple[int, bytes]]]
"""What the indexer keeps of a transaction: (txid, prevouts, [(value, script)]).

Plain tuples, not a dataclass: they are built once per transaction of every
block of the initial sync, and a tuple is the cheapest object to build and
unpack there."""


class ParseError(ValueError):
    """Raw bytes that are not a well-formed transaction or block."""


def read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    """Return (value, new_pos) of the compact-size integer at `pos`."""
    n = raw[pos]
    if n < 0xFD:
        return n, pos + 1
    if n == 0xFD:
        return _U16(raw, pos + 1)[0], pos + 3
    if n == 0xFE:
        return _U32(raw, pos + 1)[0], pos + 5
    return _U64(raw, pos + 1)[0], pos + 9


def pack_varint(n: int) -> bytes:
    """Compact-size encoding of a non-negative integer."""
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + _PACK_U16(n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + _PACK_U32(n)
    return b"\xff" + _PACK_U64(n)


def pack_varbytes(data: bytes) -> bytes:
    """Length-prefixed bytes."""
    return pack_varint(len(data)) + data


def _skip_witness(raw: bytes, pos: int, n_inputs: int) -> int:
    """Return the position after the witness stacks of `n_inputs` inputs."""
    for _ in range(n_inputs):
        n_items, pos = read_varint(raw, pos)
        for _ in range(n_items):
            size, pos = read_varint(raw, pos)
            pos += size
    return pos


def _skip_mweb_body(raw: bytes, pos: int) -> int:
    """Skip Litecoin's optional MWEB transaction body; only an empty one is understood."""
    if raw[pos]:
        raise ParseError("MWEB transaction bodies are not supported")
    return pos + 1


def parse_tx_for_index(raw: bytes, pos: int, allowed_flags: int = SEGWIT_FLAGS,
                       ) -> tuple[bytes, list[bytes], list[tuple[int, bytes]], int]:
    """Parse the transaction at `pos` of `raw` (bytes) for the indexer.

    Returns (txid, prevouts, outputs, end) where prevouts is a list of 36-byte
    outpoints (prev hash + little-endian index; empty for a coinbase), outputs
    a list of (value, script), and end the position after the transaction.
    """
    u32 = _U32
    start = pos
    if raw[pos + 4] == 0 and raw[pos + 5]:
        flag = raw[pos + 5]
        pos += 6
    else:
        flag = 0
        pos += 4
    body_start = pos

    # Inputs
    n = raw[pos]
    if n < 0xFD:
        pos += 1
    else:
        n, pos = read_varint(raw, pos)
    n_inputs = n
    prevouts: list[bytes] = []
    append = prevouts.append
    for _ in range(n):
        append(raw[pos:pos + 36])
        pos += 36
        size = raw[pos]
        if size < 0xFD:
            pos += 1 + size + 4
        else:
            size, pos = read_varint(raw, pos)
            pos += size + 4
    if n_inputs == 1 and prevouts[0][32:] == b"\xff\xff\xff\xff" \
            and prevouts[0][:32] == COINBASE_PREV_HASH:
        prevouts = []

    # Outputs
    n = raw[pos]
    if n < 0xFD:
        pos += 1
    else:
        n, pos = read_varint(raw, pos)
    outputs: list[tuple[int, bytes]] = []
    append_output = outputs.append
    u64 = _U64
    for _ in range(n):
        value = u64(raw, pos)[0]
        size = raw[pos + 8]
        if size < 0xFD:
            pos += 9
        else:
            size, pos = read_varint(raw, pos + 8)
        append_output((value, raw[pos:pos + size]))
        pos += size
    body_end = pos

    if flag:
        if flag & ~allowed_flags:
            raise ParseError(f"transaction flag {flag:#x} is not allowed on this coin")
        if flag & WITNESS_FLAG:
            pos = _skip_witness(raw, pos, n_inputs)
        if flag & MWEB_FLAG:
            pos = _skip_mweb_body(raw, pos)
        txid = double_sha256(raw[start:start + 4] + raw[body_start:body_end]
                             + raw[pos:pos + 4])
    else:
        txid = double_sha256(raw[start:pos + 4])
    u32(raw, pos)  # raises struct.error if the locktime is cut off
    return txid, prevouts, outputs, pos + 4


def parse_block_txs(raw: bytes, header_len: int = HEADER_LEN,
                    allowed_flags: int = SEGWIT_FLAGS) -> list[IndexedTx]:
    """Parse every transaction of a raw block for the indexer.

    Returns a list of (txid, prevouts, outputs) in block order; see
    `parse_tx_for_index`.  Raises ParseError on malformed bytes.
    """
    try:
        count, pos = read_varint(raw, header_len)
        txs: list[IndexedTx] = []
        append = txs.append
        parse = parse_tx_for_index
        for _ in range(count):
            txid, prevouts, outputs, pos = parse(raw, pos, allowed_flags)
            append((txid, prevouts, outputs))
    except ParseError:
        raise
    except (IndexError, ValueError, struct_error) as e:
        raise ParseError(f"malformed block: {e}") from None
    if not txs:
        raise ParseError("block has no transactions")
    return txs


@dataclass(slots=True, eq=False)
class TxInput:
    """One input: the outpoint it spends, its scriptSig, sequence and witness.

    Mutable and compared by identity, like the Tx that holds it: the witness
    comes after every output in the serialisation, so `Tx.read` sets it last.
    """

    prev_hash: bytes
    prev_idx: int
    script: bytes
    sequence: int
    witness: Sequence[bytes] = ()

    @property
    def is_coinbase(self) -> bool:
        return self.prev_hash == COINBASE_PREV_HASH and self.prev_idx == COINBASE_PREV_IDX

    @property
    def prevout(self) -> bytes:
        """The 36-byte outpoint key: prev hash and little-endian index."""
        return self.prev_hash + _PACK_U32(self.prev_idx)

    def serialize(self) -> bytes:
        return (self.prev_hash + _PACK_U32(self.prev_idx) + pack_varbytes(self.script)
                + _PACK_U32(self.sequence))


@dataclass(slots=True, eq=False)
class TxOutput:
    """One output: a value in the coin's smallest unit and its scriptPubKey.

    Never changed once built, yet not frozen: a frozen dataclass sets its
    fields through `object.__setattr__`, three times slower, and that made
    `deserialize_block_txs` 12% slower (it builds one per output).  Compared
    by identity, as the Tx and TxInput are.
    """

    value: int
    script: bytes

    def serialize(self) -> bytes:
        return _PACK_I64(self.value) + pack_varbytes(self.script)


@dataclass(slots=True, eq=False)
class Tx:
    """A complete transaction, with its identifiers and sizes.

    Compared by identity: it is mutable (the regtest node's block maker adds
    the witness commitment to its coinbase) and caches its txid and bytes.
    """

    version: int
    inputs: list[TxInput]
    outputs: list[TxOutput]
    locktime: int
    flag: int = 0
    _txid: bytes | None = field(default=None, init=False, repr=False)
    _raw: bytes | None = field(default=None, init=False, repr=False)

    @property
    def has_witness(self) -> bool:
        return bool(self.flag & WITNESS_FLAG)

    @property
    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].is_coinbase

    def serialize_legacy(self) -> bytes:
        """The serialisation that the txid hashes: no marker, flag or witness."""
        parts = [_PACK_I32(self.version), pack_varint(len(self.inputs))]
        parts.extend(txin.serialize() for txin in self.inputs)
        parts.append(pack_varint(len(self.outputs)))
        parts.extend(txout.serialize() for txout in self.outputs)
        parts.append(_PACK_U32(self.locktime))
        return b"".join(parts)

    def serialize(self) -> bytes:
        """The full network serialisation (with witness when there is one)."""
        if self._raw is not None:
            return self._raw
        if not self.flag:
            raw = self.serialize_legacy()
        else:
            parts = [_PACK_I32(self.version), b"\x00", bytes((self.flag,)),
                     pack_varint(len(self.inputs))]
            parts.extend(txin.serialize() for txin in self.inputs)
            parts.append(pack_varint(len(self.outputs)))
            parts.extend(txout.serialize() for txout in self.outputs)
            if self.flag & WITNESS_FLAG:
                for txin in self.inputs:
                    parts.append(pack_varint(len(txin.witness)))
                    parts.extend(pack_varbytes(item) for item in txin.witness)
            if self.flag & MWEB_FLAG:
                parts.append(b"\x00")
            parts.append(_PACK_U32(self.locktime))
            raw = b"".join(parts)
        self._raw = raw
        return raw

    @property
    def txid(self) -> bytes:
        """Internal-order txid: double SHA-256 of the legacy serialisation."""
        if self._txid is None:
            self._txid = double_sha256(self.serialize_legacy())
        return self._txid

    @property
    def wtxid(self) -> bytes:
        """Internal-order wtxid: double SHA-256 of the full serialisation."""
        return double_sha256(self.serialize()) if self.flag else self.txid

    @property
    def txid_hex(self) -> str:
        return hash_to_hex_str(self.txid)

    @property
    def size(self) -> int:
        return len(self.serialize())

    @property
    def weight(self) -> int:
        return len(self.serialize_legacy()) * 3 + self.size

    @property
    def vsize(self) -> int:
        return (self.weight + 3) // 4

    @classmethod
    def from_bytes(cls, raw: bytes, allowed_flags: int = SEGWIT_FLAGS) -> "Tx":
        """Deserialise the one transaction that `raw` holds: trailing bytes are an error."""
        tx, end = cls.read(raw, 0, allowed_flags)
        if end != len(raw):
            raise ParseError("trailing bytes after transaction")
        return tx

    @classmethod
    def read(cls, raw: bytes, pos: int, allowed_flags: int = SEGWIT_FLAGS) -> tuple["Tx", int]:
        """Deserialise the transaction at `pos`; return it and the position after it."""
        try:
            tx, end = cls._read(raw, pos, allowed_flags)
        except ParseError:
            raise
        except (IndexError, ValueError, struct_error) as e:
            raise ParseError(f"malformed transaction: {e!r}") from None
        tx._raw = bytes(raw[pos:end])
        return tx, end

    @classmethod
    def _read(cls, raw: bytes, pos: int, allowed_flags: int) -> tuple["Tx", int]:
        version = _I32(raw, pos)[0]
        flag = 0
        if raw[pos + 4] == 0 and raw[pos + 5]:
            flag = raw[pos + 5]
            if flag & ~allowed_flags:
                raise ParseError(f"transaction flag {flag:#x} is not allowed on this coin")
            pos += 6
        else:
            pos += 4
        n_inputs, pos = read_varint(raw, pos)
        inputs: list[TxInput] = []
        for _ in range(n_inputs):
            prev_hash = bytes(raw[pos:pos + 32])
            prev_idx = _U32(raw, pos + 32)[0]
            size, pos = read_varint(raw, pos + 36)
            script = bytes(raw[pos:pos + size])
            if len(script) != size:
                raise ParseError("truncated input script")
            pos += size
            inputs.append(TxInput(prev_hash, prev_idx, script, _U32(raw, pos)[0]))
            pos += 4
        n_outputs, pos = read_varint(raw, pos)
        outputs: list[TxOutput] = []
        for _ in range(n_outputs):
            value = _I64(raw, pos)[0]
            size, pos = read_varint(raw, pos + 8)
            script = bytes(raw[pos:pos + size])
            if len(script) != size:
                raise ParseError("truncated output script")
            pos += size
            outputs.append(TxOutput(value, script))
        if flag & WITNESS_FLAG:
            for txin in inputs:
                n_items, pos = read_varint(raw, pos)
                items: list[bytes] = []
                for _ in range(n_items):
                    size, pos = read_varint(raw, pos)
                    items.append(bytes(raw[pos:pos + size]))
                    pos += size
                txin.witness = items
        if flag & MWEB_FLAG:
            pos = _skip_mweb_body(raw, pos)
        locktime = _U32(raw, pos)[0]
        return cls(version, inputs, outputs, locktime, flag), pos + 4


def deserialize_block_txs(raw: bytes, header_len: int = HEADER_LEN,
                          allowed_flags: int = SEGWIT_FLAGS) -> list[Tx]:
    """Every transaction of a raw block as full Tx objects."""
    count, pos = read_varint(raw, header_len)
    txs = []
    for _ in range(count):
        tx, pos = Tx.read(raw, pos, allowed_flags)
        txs.append(tx)
    return txs
