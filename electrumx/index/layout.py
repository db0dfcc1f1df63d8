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
``s``    ``s`` txid[:4] out_idx(4 LE) tx_num(5)      spender tx_num(5) hashX(11)
``H``    ``H`` hashX(11) first_tx_num(5)             tx_nums (5 each, ascending)
``U``    ``U`` height(4)                             undo record of the block
``W``    ``W`` chunk(4)                              keys a flush wrote ahead of
                                                     its commit, end to end
``R``    ``R`` chunk(4)                              DB_SPEND records of outputs
                                                     a flush deleted ahead of its
                                                     commit, end to end
=======  ==========================================  ===========================

History rows (``H``) hold the tx_nums a flush added for a script; the key's
second part is the first of them, so rows of a script sort in chain order and
keys never repeat.  Nothing counts flushes, so nothing overflows and nothing
ever needs compacting; a reorg trims the rows of the scripts it touched.

``h`` finds the owner of an outpoint from the 36 bytes of a spending input
without hashing: a 4-byte txid prefix keeps it small, and the rare collision
is settled by reading the full txid from ``T``.

``s`` is the spent-outpoint table: when a block spends an output, its ``h`` key
(under ``s``) is written with the spending transaction's tx_num and the
output's script.  It answers protocol 1.7's outpoint status for spent outputs
on any node, without the node's spender index; collisions are settled like
``h``'s.  Backing a block out deletes the rows its undo record's spent
entries name.
"""

from struct import Struct

LAYOUT_VERSION = 2
"""Bump on any change to this file's keys or values; other versions are refused."""

LAYOUT_CHANGES = {
    2: "the spent-outpoint table (``s``) that protocol 1.7's outpoint status reads",
}
"""What each version added: the refusal of an older index tells the operator why."""

STATE_KEY = b"S"
HEADER_PREFIX = b"D"
TXID_PREFIX = b"T"
UTXO_PREFIX = b"u"
OUTPOINT_PREFIX = b"h"
SPENT_PREFIX = b"s"
HISTORY_PREFIX = b"H"
UNDO_PREFIX = b"U"
JOURNAL_PREFIX = b"W"
RESTORE_PREFIX = b"R"

HASHX_LEN = 11
TX_NUM_LEN = 5
TXID_PREFIX_LEN = 4
PREVOUT_LEN = 36

_U32_BE = Struct(">I")
_U64_LE = Struct("<Q")
pack_value = _U64_LE.pack
unpack_value = _U64_LE.unpack_from

# Fields inside keys, values and prevouts, as slices: the loops that run once per
# output or per input slice with these rather than call a function per field, which
# would cost a sync measurable time.  A prevout (an input's outpoint, and the UTXO
# cache's key) is txid(32) out_idx(4 LE).
PREVOUT_TXID = slice(0, 32)
PREVOUT_TXID_HEAD = slice(0, TXID_PREFIX_LEN)
"""The txid prefix that an ``h`` key holds."""
PREVOUT_OUT_IDX = slice(32, PREVOUT_LEN)
"""The out index, little-endian, as an ``h`` key holds it."""
PREVOUT_OUT_IDX_BE = slice(PREVOUT_LEN - 1, 31, -1)
"""The out index reversed to big-endian, as a ``u`` key holds it."""
OUTPOINT_KEY_TX_NUM = slice(-TX_NUM_LEN, None)
"""The funding tx_num at the end of an ``h`` or ``s`` key."""
SPENT_VALUE_TX_NUM = slice(0, TX_NUM_LEN)
"""The spending tx_num in an ``s`` value."""
SPENT_VALUE_HASHX = slice(TX_NUM_LEN, None)
"""The spent output's hashX in an ``s`` value."""
HISTORY_KEY_HASHX = slice(1, 1 + HASHX_LEN)
HISTORY_KEY_FIRST_TX_NUM = slice(1 + HASHX_LEN, None)

# A UTXO entry is an output as the block processor caches it until a flush:
# hashX(11) tx_num(5) value(8 LE).  Its owner part (hashX and tx_num) is the middle of
# the output's ``u`` key and its value part the ``u`` value.
_UTXO_ENTRY = Struct(f"<{HASHX_LEN}s{TX_NUM_LEN}sQ")
pack_utxo_entry = _UTXO_ENTRY.pack
"""(hashX, tx_numb, value) -> a UTXO entry."""
ENTRY_HASHX = slice(0, HASHX_LEN)
ENTRY_TX_NUM = slice(HASHX_LEN, HASHX_LEN + TX_NUM_LEN)
ENTRY_OWNER = slice(0, HASHX_LEN + TX_NUM_LEN)
ENTRY_VALUE = slice(HASHX_LEN + TX_NUM_LEN, None)

# A spend record is a spend as the block processor caches it until a flush, the parts
# of its ``s`` row end to end in one buffer (no object per spend): txid head and out
# index (the prevout's slices an ``h`` key holds), the spent output's owner part
# (hashX, funding tx_num) and the spender's tx_num.  29 bytes: the whole prevout and
# entry would save two slices per input but cost 65.
SPEND_RECORD = Struct(f"<{TXID_PREFIX_LEN + 4}s{HASHX_LEN}s{TX_NUM_LEN}s{TX_NUM_LEN}s")
"""Unpacks to (txid head + out_idx LE, hashX, funding tx_numb, spending tx_numb)."""

# A DB spend is a spent output that an earlier flush wrote, as the block processor
# queues the deletion of its ``u`` and ``h`` rows: both keys and both values can be
# made from its 32 bytes, so a stepped flush can delete the rows ahead of its commit
# and journal how to put them back (a ``R`` row).  Two key objects in a list cost
# about 140 bytes a spend.
DB_SPEND = Struct(f"{HASHX_LEN}s{TX_NUM_LEN}s{TXID_PREFIX_LEN}s4s8s")
"""Unpacks to (hashX, funding tx_numb, txid head, out_idx LE, packed value)."""


def db_spend_rows(records: bytes):
    """The (key, value) of the ``u`` and the ``h`` row of each output of `records`
    (`DB_SPEND` records end to end)."""
    for hashX, tx_numb, txid_head, idx_le, value in DB_SPEND.iter_unpack(records):
        yield UTXO_PREFIX + hashX + tx_numb + idx_le[::-1], value
        yield OUTPOINT_PREFIX + txid_head + idx_le + tx_numb, hashX


def pack_tx_num(tx_num: int) -> bytes:
    return tx_num.to_bytes(TX_NUM_LEN, "big")


def unpack_tx_num(data: bytes) -> int:
    return int.from_bytes(data, "big")


def unpack_tx_nums(row: bytes):
    """The tx_nums of an ``H`` row, in its (ascending) order."""
    return [int.from_bytes(row[i:i + TX_NUM_LEN], "big")
            for i in range(0, len(row), TX_NUM_LEN)]


def header_key(height: int) -> bytes:
    return HEADER_PREFIX + _U32_BE.pack(height)


def header_value(raw_header: bytes, tx_count: int) -> bytes:
    return raw_header + _U64_LE.pack(tx_count)


def split_header_value(value: bytes):
    """(raw header, tx count after the block) from a ``D`` value."""
    return value[:-8], _U64_LE.unpack_from(value, len(value) - 8)[0]


def txid_key(tx_num: int) -> bytes:
    return TXID_PREFIX + pack_tx_num(tx_num)


def utxo_key(hashX: bytes, tx_numb: bytes, prevout: bytes) -> bytes:
    """``u`` key of an output: the out index comes big-endian from the prevout's LE bytes."""
    return UTXO_PREFIX + hashX + tx_numb + prevout[PREVOUT_OUT_IDX_BE]


def split_utxo_key(key: bytes):
    """(tx_num, out_idx) from a ``u`` key."""
    return (unpack_tx_num(key[1 + HASHX_LEN:1 + HASHX_LEN + TX_NUM_LEN]),
            _U32_BE.unpack_from(key, 1 + HASHX_LEN + TX_NUM_LEN)[0])


def outpoint_prefix(prevout: bytes) -> bytes:
    """The ``h`` key prefix that a spending input's 36-byte outpoint points at."""
    return OUTPOINT_PREFIX + prevout[PREVOUT_TXID_HEAD] + prevout[PREVOUT_OUT_IDX]


def outpoint_key(prevout: bytes, tx_numb: bytes) -> bytes:
    return outpoint_prefix(prevout) + tx_numb


def spent_prefix(prevout: bytes) -> bytes:
    """The ``s`` key prefix of the output `prevout` (36 bytes) names."""
    return SPENT_PREFIX + prevout[PREVOUT_TXID_HEAD] + prevout[PREVOUT_OUT_IDX]


def spent_key(prevout: bytes, tx_numb: bytes) -> bytes:
    """The ``s`` key of the output `prevout` names, funded by transaction `tx_numb`."""
    return spent_prefix(prevout) + tx_numb


def history_key(hashX: bytes, row: bytes) -> bytes:
    """The ``H`` key of a script's row: its hashX and the row's first tx_num."""
    return HISTORY_PREFIX + hashX + row[:TX_NUM_LEN]


JOURNALED_KEY_LEN = {UTXO_PREFIX[0]: 1 + HASHX_LEN + TX_NUM_LEN + 4,
                     OUTPOINT_PREFIX[0]: 1 + TXID_PREFIX_LEN + 4 + TX_NUM_LEN,
                     SPENT_PREFIX[0]: 1 + TXID_PREFIX_LEN + 4 + TX_NUM_LEN,
                     HISTORY_PREFIX[0]: 1 + HASHX_LEN + TX_NUM_LEN}
"""The key length of each table whose rows a flush writes ahead, by prefix byte."""


def journal_key(chunk: int) -> bytes:
    return JOURNAL_PREFIX + _U32_BE.pack(chunk)


def restore_key(chunk: int) -> bytes:
    """The ``R`` row journaling the DB spends a stepped flush deleted ahead, one a chunk."""
    return RESTORE_PREFIX + _U32_BE.pack(chunk)


def split_journal(value: bytes):
    """The keys a ``W`` row lists (end to end, each its table's length)."""
    keys, pos = [], 0
    while pos < len(value):
        end = pos + JOURNALED_KEY_LEN[value[pos]]
        keys.append(value[pos:end])
        pos = end
    return keys


def undo_key(height: int) -> bytes:
    return UNDO_PREFIX + _U32_BE.pack(height)


# An undo record lists, for one block, the outputs it created and the ones it
# spent, each as a fixed-size entry, so backing the block out needs neither
# the block nor the node.  A spent entry is the spent output's UTXO entry with
# its prevout inserted after the owner part.
#   created: hashX(11) tx_num(5) prevout(36)
#   spent:   hashX(11) tx_num(5) prevout(36) value(8 LE)
_UNDO_HEAD = Struct("<I")
_CREATED = Struct(f"<{HASHX_LEN}s{TX_NUM_LEN}s{PREVOUT_LEN}s")
_SPENT = Struct(f"<{HASHX_LEN}s{TX_NUM_LEN}s{PREVOUT_LEN}sQ")


def pack_undo(created: bytes, spent: bytes) -> bytes:
    """An undo record from the concatenated created and spent entries."""
    return _UNDO_HEAD.pack(len(created) // _CREATED.size) + created + spent


def unpack_undo(record: bytes):
    """Return (created entries, spent entries) as lists of (hashX, tx_numb, prevout[, value])."""
    spent_from = _UNDO_HEAD.size + _UNDO_HEAD.unpack_from(record)[0] * _CREATED.size
    return (list(_CREATED.iter_unpack(record[_UNDO_HEAD.size:spent_from])),
            list(_SPENT.iter_unpack(record[spent_from:])))
