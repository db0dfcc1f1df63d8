"""bitcoind's txindex for the built-in node: txid -> (height, start, end), in arrays.

A dict of bytes keys and tuples costs some 250 bytes a transaction: 5 GB on
a chain of 20 million.  This index keeps, per transaction, the first 8 bytes
of its txid and its end offset in its block (12 bytes), per block the number
of its first transaction and where that starts, and an open-addressing table
of transaction numbers (4 bytes a slot, at most half full): about 20 to 28
bytes a transaction.  Transactions are numbered in chain order, so a block
is dropped from the tip by cutting the arrays; table slots left pointing past
the end are skipped, reused, or point at a later transaction whose 8 bytes
are then compared like any other.  A match on 8 bytes is a candidate: the
caller confirms it against the full txid (`TxIndex.get`'s `txid_of`).
"""

import random
from array import array
from bisect import bisect_right

_MIN_SLOTS = 1 << 10


class TxIndex:
    """Where each transaction of a chain's first `len(index)` blocks lies."""

    def __init__(self):
        self._keys = array("Q")         # per transaction: its txid's first 8 bytes
        self._ends = array("I")         # per transaction: its end offset in its block
        self._first = array("Q", [0])   # per block: its first transaction's number (+ the end)
        self._starts = array("I")       # per block: its first transaction's offset
        self._slots = array("I", bytes(4 * _MIN_SLOTS))     # transaction number + 1; 0 empty
        self._used = 0                  # slots not 0, dead ones included
        # A random odd multiplier: where a txid lands cannot be chosen by whoever makes it.
        self._multiplier = random.getrandbits(64) | 1

    def __len__(self) -> int:
        """The number of blocks indexed."""
        return len(self._starts)

    @property
    def tx_count(self) -> int:
        return len(self._keys)

    def add_block(self, txs):
        """Index the next block's [(txid, start, end)], in block order."""
        self._starts.append(txs[0][1] if txs else 0)
        for txid, _start, end in txs:
            self._keys.append(int.from_bytes(txid[:8], "little"))
            self._ends.append(end)
            self._insert(len(self._keys) - 1)
        self._first.append(len(self._keys))

    def truncate(self, blocks: int):
        """Forget the blocks from height `blocks` up."""
        if blocks >= len(self):
            return
        count = self._first[blocks]
        del self._keys[count:], self._ends[count:]
        del self._first[blocks + 1:], self._starts[blocks:]

    def get(self, txid: bytes, txid_of):
        """(height, start, end) of the transaction `txid`, or None.  `txid_of(height,
        start, end)` is the txid of the transaction there, to confirm an 8-byte match."""
        if len(txid) != 32:
            return None
        key = int.from_bytes(txid[:8], "little")
        keys, slots, mask = self._keys, self._slots, len(self._slots) - 1
        at = self._slot_of(key)
        while slots[at]:
            number = slots[at] - 1
            if number < len(keys) and keys[number] == key:
                found = self._position(number)
                if txid_of(*found) == txid:
                    return found
            at = (at + 1) & mask
        return None

    def _position(self, number: int):
        height = bisect_right(self._first, number) - 1
        start = self._starts[height] if number == self._first[height] else self._ends[number - 1]
        return height, start, self._ends[number]

    def _slot_of(self, key: int) -> int:
        bits = len(self._slots).bit_length() - 1
        return ((key * self._multiplier) & 0xFFFF_FFFF_FFFF_FFFF) >> (64 - bits)

    def _insert(self, number: int):
        if 2 * (self._used + 1) > len(self._slots):
            self._rebuild()
        slots, mask, live = self._slots, len(self._slots) - 1, len(self._keys)
        at = self._slot_of(self._keys[number])
        while slots[at] and slots[at] - 1 < live and slots[at] - 1 != number:
            at = (at + 1) & mask
        if not slots[at]:
            self._used += 1
        slots[at] = number + 1

    def _rebuild(self):
        """A table twice the live transactions' number at least, without the dead slots."""
        size = _MIN_SLOTS
        while size < 4 * len(self._keys):
            size *= 2
        self._slots = array("I", bytes(4 * size))
        self._used = 0
        for number in range(len(self._keys) - 1):        # the last is inserted by the caller
            self._insert(number)
