"""The index's key layout: every LevelDB key and value the server writes, in one place.

Everything lives in ONE LevelDB database, so that each flush is one atomic
write batch carrying its own state record: after a crash (even `kill -9`
during a flush) the database is exactly as it was after the last committed
flush, and there is no ordering invariant between stores to repair.

Integers in keys are big-endian so that LevelDB's byte order is numeric order.
A tx_num is the 0-based position of a transaction in the chain, 5 bytes.

=======  ==========================================  ===========================
prefix   key                                         value
=======  ==========================================  ===========================
``S``    ``S``                                       state (JSON)
``D``    ``D`` height(4)                             raw header + tx count after
                                                     the block (8, LE)
``T``    ``T`` tx_num(5)                             txid (32, internal order)
``u``    ``u`` hashX(11) tx_num(5) out_idx(4 BE)     value (8, LE)
``h``    ``h`` txid[:4] out_idx(4 LE) tx_num(5)      hashX(11)
``H``    ``H`` hashX(11) first_tx_num(5)             tx_nums (5 each, ascending)
``U``    ``U`` height(4)                             undo record of the block
=======  ==========================================  ===========================

History rows (``H``) hold the tx_nums a flush added for a script; the key's
second part is the first of them, so rows of a script sort in chain order and
keys never repeat.  Nothing counts flushes, so nothing overflows and nothing
ever needs compacting; a reorg trims the rows of the scripts it touched.

``h`` finds the owner of an outpoint from the 36 bytes of a spending input
without hashing: a 4-byte txid prefix keeps it small, and the rare collision
is settled by reading the full txid from ``T``.
"""

from struct import Struct

LAYOUT_VERSION = 1
"""Bump on any change to this file's keys or values; other versions are refused."""

STATE_KEY = b"S"
HEADER_PREFIX = b"D"
TXID_PREFIX = b"T"
UTXO_PREFIX = b"u"
OUTPOINT_PREFIX = b"h"
HISTORY_PREFIX = b"H"
UNDO_PREFIX = b"U"

HASHX_LEN = 11
TX_NUM_LEN = 5
TXID_PREFIX_LEN = 4

_U32_BE = Struct(">I")
_U64_LE = Struct("<Q")
pack_value = _U64_LE.pack
unpack_value = _U64_LE.unpack_from


def pack_height(height: int) -> bytes:
    return _U32_BE.pack(height)


def pack_tx_num(tx_num: int) -> bytes:
    return tx_num.to_bytes(TX_NUM_LEN, "big")


def unpack_tx_num(data: bytes) -> int:
    return int.from_bytes(data, "big")


def header_key(height: int) -> bytes:
    return HEADER_PREFIX + _U32_BE.pack(height)


def header_value(raw_header: bytes, tx_count: int) -> bytes:
    return raw_header + _U64_LE.pack(tx_count)


def split_header_value(value: bytes):
    """(raw header, tx count after the block) from a ``D`` value."""
    return value[:-8], _U64_LE.unpack_from(value, len(value) - 8)[0]


def txid_key(tx_num: int) -> bytes:
    return TXID_PREFIX + tx_num.to_bytes(TX_NUM_LEN, "big")


def utxo_key(hashX: bytes, tx_numb: bytes, prevout: bytes) -> bytes:
    """``u`` key of an output: the out index comes big-endian from the prevout's LE bytes."""
    return UTXO_PREFIX + hashX + tx_numb + prevout[35:31:-1]


def outpoint_prefix(prevout: bytes) -> bytes:
    """The ``h`` key prefix that a spending input's 36-byte outpoint points at."""
    return OUTPOINT_PREFIX + prevout[:TXID_PREFIX_LEN] + prevout[32:36]


def outpoint_key(prevout: bytes, tx_numb: bytes) -> bytes:
    return OUTPOINT_PREFIX + prevout[:TXID_PREFIX_LEN] + prevout[32:36] + tx_numb


def history_key(hashX: bytes, first_tx_numb: bytes) -> bytes:
    return HISTORY_PREFIX + hashX + first_tx_numb


def undo_key(height: int) -> bytes:
    return UNDO_PREFIX + _U32_BE.pack(height)


# An undo record lists, for one block, the outputs it created and the ones it
# spent, each as a fixed-size entry, so backing the block out needs neither
# the block nor the node.
#   created: hashX(11) tx_num(5) prevout(36)
#   spent:   hashX(11) tx_num(5) prevout(36) value(8)
CREATED_LEN = HASHX_LEN + TX_NUM_LEN + 36
SPENT_LEN = CREATED_LEN + 8
_UNDO_HEAD = Struct("<I")


def pack_undo(created: bytes, spent: bytes) -> bytes:
    """An undo record from the concatenated created and spent entries."""
    return _UNDO_HEAD.pack(len(created) // CREATED_LEN) + created + spent


def unpack_undo(record: bytes):
    """Return (created entries, spent entries) as lists of (hashX, tx_numb, prevout[, value])."""
    n_created = _UNDO_HEAD.unpack_from(record)[0]
    pos = _UNDO_HEAD.size
    created = []
    for _ in range(n_created):
        created.append((record[pos:pos + 11], record[pos + 11:pos + 16],
                        record[pos + 16:pos + 52]))
        pos += CREATED_LEN
    spent = []
    while pos < len(record):
        spent.append((record[pos:pos + 11], record[pos + 11:pos + 16],
                      record[pos + 16:pos + 52], _U64_LE.unpack_from(record, pos + 52)[0]))
        pos += SPENT_LEN
    return created, spent
