"""Transactions and blocks: a fast one-pass reader for the indexer, a full one for the rest.

The indexer only needs, per transaction, its txid, the outpoints it spends and
the (value, script) pairs it creates.  `parse_block_txs` walks a raw block once
with precompiled `struct` unpackers and builds exactly those objects; scripts
of inputs and witness data are skipped by length, never copied.

`Tx.from_bytes` builds the complete object (scripts, sequences, witnesses,
sizes): the regtest node, verbose `transaction.get` and the tests use it.

Both understand legacy and segwit serialisation, and Litecoin's MWEB flag
(bit 8) on the HogEx transaction, whose extension body is empty.
"""

from struct import Struct, error as struct_error

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


class ParseError(ValueError):
    """Raw bytes that are not a well-formed transaction or block."""


def read_varint(raw, pos):
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


def _skip_witness(raw, pos, n_inputs):
    """Return the position after the witness stacks of `n_inputs` inputs."""
    for _ in range(n_inputs):
        n_items, pos = read_varint(raw, pos)
        for _ in range(n_items):
            size, pos = read_varint(raw, pos)
            pos += size
    return pos


def _skip_mweb_body(raw, pos):
    """Skip Litecoin's optional MWEB transaction body; only an empty one is understood."""
    if raw[pos]:
        raise ParseError("MWEB transaction bodies are not supported")
    return pos + 1


def parse_tx_for_index(raw, pos, allowed_flags=SEGWIT_FLAGS):
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
    prevouts = []
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
    outputs = []
    append = outputs.append
    u64 = _U64
    for _ in range(n):
        value = u64(raw, pos)[0]
        size = raw[pos + 8]
        if size < 0xFD:
            pos += 9
        else:
            size, pos = read_varint(raw, pos + 8)
        append((value, raw[pos:pos + size]))
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


def parse_block_txs(raw: bytes, header_len: int = HEADER_LEN, allowed_flags=SEGWIT_FLAGS):
    """Parse every transaction of a raw block for the indexer.

    Returns a list of (txid, prevouts, outputs) in block order; see
    `parse_tx_for_index`.  Raises ParseError on malformed bytes.
    """
    try:
        count, pos = read_varint(raw, header_len)
        txs = []
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


class TxInput:
    """One input: the outpoint it spends, its scriptSig, sequence and witness."""

    __slots__ = ("prev_hash", "prev_idx", "script", "sequence", "witness")

    def __init__(self, prev_hash, prev_idx, script, sequence, witness=()):
        self.prev_hash = prev_hash
        self.prev_idx = prev_idx
        self.script = script
        self.sequence = sequence
        self.witness = witness

    @property
    def is_coinbase(self):
        return self.prev_hash == COINBASE_PREV_HASH and self.prev_idx == COINBASE_PREV_IDX

    @property
    def prevout(self) -> bytes:
        """The 36-byte outpoint key: prev hash and little-endian index."""
        return self.prev_hash + _PACK_U32(self.prev_idx)

    def serialize(self) -> bytes:
        return (self.prev_hash + _PACK_U32(self.prev_idx) + pack_varbytes(self.script)
                + _PACK_U32(self.sequence))


class TxOutput:
    """One output: a value in the coin's smallest unit and its scriptPubKey."""

    __slots__ = ("value", "script")

    def __init__(self, value, script):
        self.value = value
        self.script = script

    def serialize(self) -> bytes:
        return _PACK_I64(self.value) + pack_varbytes(self.script)


class Tx:
    """A complete transaction, with its identifiers and sizes."""

    __slots__ = ("version", "inputs", "outputs", "locktime", "flag", "_txid", "_raw")

    def __init__(self, version, inputs, outputs, locktime, flag=0):
        self.version = version
        self.inputs = inputs
        self.outputs = outputs
        self.locktime = locktime
        self.flag = flag
        self._txid = None
        self._raw = None

    @property
    def has_witness(self):
        return bool(self.flag & WITNESS_FLAG)

    @property
    def is_coinbase(self):
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
    def from_bytes(cls, raw: bytes, pos: int = 0, exact: bool = True,
                   allowed_flags: int = SEGWIT_FLAGS):
        """Deserialise one transaction.

        With `exact` the bytes must hold exactly one transaction and the Tx is
        returned; otherwise (Tx, end_position) is returned.
        """
        start = pos
        try:
            tx, pos = cls._read(raw, pos, allowed_flags)
        except ParseError:
            raise
        except (IndexError, ValueError, struct_error) as e:
            raise ParseError(f"malformed transaction: {e!r}") from None
        if exact:
            if pos != len(raw):
                raise ParseError("trailing bytes after transaction")
            tx._raw = bytes(raw) if start == 0 else bytes(raw[start:pos])
            return tx
        tx._raw = bytes(raw[start:pos])
        return tx, pos

    @classmethod
    def _read(cls, raw, pos, allowed_flags):
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
        inputs = []
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
        outputs = []
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
                items = []
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
                          allowed_flags: int = SEGWIT_FLAGS):
    """Every transaction of a raw block as full Tx objects."""
    count, pos = read_varint(raw, header_len)
    txs = []
    for _ in range(count):
        tx, pos = Tx.from_bytes(raw, pos, exact=False, allowed_flags=allowed_flags)
        txs.append(tx)
    return txs
