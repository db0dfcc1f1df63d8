"""The node's raw blocks by height, and where the transactions of one block lie.

A node's chain is the pregenerated stretch it was given (a cache entry's
BlockFile, read from disk when a block is served, or a plain list in tests)
followed by the blocks it mined, kept in memory: those are few.  A reorg or a
mine below the given stretch's end cuts the stretch there.
"""

from array import array

from electrumx.chain.tx import parse_tx_for_index, read_varint
from electrumx.regtest.cache import BlockFile


class ChainBlocks:
    """A list-like chain of raw blocks: a given stretch, then blocks appended in memory.

    Indexing and slicing give raw blocks; `header`, `size` and `read` give a
    block's header, length, or a stretch of its bytes without reading the
    whole block from disk.
    """

    def __init__(self, given, mined=()):
        self._given = given if isinstance(given, BlockFile) else list(given)
        self._kept = len(self._given)         # how many of the given blocks are still chained
        self._mined: list = list(mined)

    def __len__(self) -> int:
        return self._kept + len(self._mined)

    def __iter__(self):
        return (self[height] for height in range(len(self)))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        height = self._height(index)
        return self._given[height] if height < self._kept else self._mined[height - self._kept]

    def _height(self, index: int) -> int:
        height = index + len(self) if index < 0 else index
        if not 0 <= height < len(self):
            raise IndexError("no block at that height")
        return height

    def header(self, height: int) -> bytes:
        return self.read(height, 0, 80)

    def size(self, height: int) -> int:
        height = self._height(height)
        if height < self._kept and isinstance(self._given, BlockFile):
            return self._given.size(height)
        return len(self[height])

    def read(self, height: int, start: int, end: int) -> bytes:
        """Bytes `start` to `end` of the block at `height`."""
        height = self._height(height)
        if height < self._kept and isinstance(self._given, BlockFile):
            return self._given.read(height, start, end)
        return self[height][start:end]

    def append(self, raw: bytes):
        self._mined.append(raw)

    def truncate(self, length: int):
        """Drop the blocks from height `length` up."""
        if length <= self._kept:
            self._kept = max(0, length)
            self._mined = []
        else:
            del self._mined[length - self._kept:]


class BlockTxs:
    """Where each transaction of one block lies, compactly: the txids in one bytes
    string and the start offsets in an array, about 36 bytes a transaction rather
    than the ~200 of a dict of tuples, so that the node can keep those of a few
    hundred blocks of thousands of transactions."""

    __slots__ = ("_txids", "_bounds")

    def __init__(self, raw_block: bytes):
        count, pos = read_varint(raw_block, 80)
        txids = []
        bounds = array("I", [pos])
        for _ in range(count):
            txid, _prevouts, _outputs, pos = parse_tx_for_index(raw_block, pos)
            txids.append(txid)
            bounds.append(pos)
        self._txids = b"".join(txids)
        self._bounds = bounds

    def find(self, txid: bytes):
        """(start, end) of the transaction in the block, or None."""
        if len(txid) != 32:
            return None
        at = self._txids.find(txid)
        while at >= 0 and at % 32:
            at = self._txids.find(txid, at + 1)
        if at < 0:
            return None
        n = at // 32
        return self._bounds[n], self._bounds[n + 1]
