"""Generated chains on disk, so each workload is generated once per machine.

A cache entry is a directory named by the format version and the workload's
parameter digest, holding `blocks.bin` (length-prefixed raw blocks) and
`expected.json`.  It is written under a temporary name and renamed into
place, so a generator killed half-way never leaves a half entry behind, and
two processes generating the same chain at once both end with a whole one.

Reading an entry opens `blocks.bin` as a BlockFile: the blocks stay on disk
and are read one by one when asked for, so a chain of many gigabytes costs
its reader an offset and a length per block, not its bytes.
"""

import json
import os
import shutil
import struct
import tempfile
from array import array
from collections.abc import Sequence
from typing import NamedTuple

from electrumx.regtest.workload import generate_into

# Bump when the generator's output changes for the same parameters.
FORMAT_VERSION = 2
_LEN = struct.Struct("<I")


class GeneratedChain(NamedTuple):
    """Raw blocks (genesis first; a BlockFile when read from the cache) and the expected
    answers as a JSON-ready dict.

    expected maps scripthash -> {kind, script, history, balance, utxos}; see
    electrumx.regtest.expected.Expected.as_json.
    """

    blocks: list
    expected: dict


def default_cache_dir() -> str:
    """$XDG_CACHE_HOME/txelectrumx/regtest, or ~/.cache/txelectrumx/regtest."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "txelectrumx", "regtest")


def cache_entry(params, cache_dir=None) -> str:
    """The directory a workload's chain is (or would be) cached in."""
    return os.path.join(cache_dir or default_cache_dir(), f"v{FORMAT_VERSION}-{params.key()}")


def load_or_generate(params, cache_dir=None, log=None) -> GeneratedChain:
    """The workload's chain from the cache, generating and caching it if absent."""
    entry = cache_entry(params, cache_dir)
    if os.path.isdir(entry):
        return _read(entry)
    if log is not None:
        log.info("generating regtest chain: {blocks} blocks, {txs} transactions",
                 blocks=params.blocks, txs=params.txs)
    _write(entry, params)
    if log is not None:
        log.info("cached regtest chain in {entry}", entry=entry)
    return _read(entry)


def _write(entry, params):
    """Generate straight into the entry's files: blocks never pile up in memory."""
    parent = os.path.dirname(entry)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=".partial-")
    try:
        with open(os.path.join(tmp, "blocks.bin"), "wb") as f:
            expected = generate_into(params, lambda raw: f.write(block_record(raw)))
        with open(os.path.join(tmp, "expected.json"), "w") as f:
            json.dump(expected.as_json(), f)
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(entry):        # not merely beaten to it by another process
            raise


def _read(entry) -> GeneratedChain:
    """The entry's chain: its blocks left on disk (a BlockFile), its expected answers."""
    blocks = BlockFile(os.path.join(entry, "blocks.bin"))
    with open(os.path.join(entry, "expected.json")) as f:
        expected = json.load(f)
    return GeneratedChain(blocks, expected)


class BlockFile(Sequence):
    """The raw blocks of a file of block records, each read from disk when asked for.

    Opening it reads only the records' length prefixes, seeking over the
    blocks, and keeps an offset and a length per block (two arrays): that is
    all it holds in memory, whatever the chain's size.  A block, its header,
    or a stretch of it (a transaction) is one `pread`, so serving never
    scans the file and nothing read stays resident (an mmap would leave every
    page read counted in the reader's RSS).  A last record cut short is left
    out, as `read_blocks` does.  The file must not change while open; cache
    entries never do.
    """

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_RDONLY)
        self._offsets = array("Q")         # where each block's bytes start
        self._sizes = array("I")
        file_size = os.fstat(self._fd).st_size
        pos = 0
        while pos + _LEN.size <= file_size:
            (size,) = _LEN.unpack(os.pread(self._fd, _LEN.size, pos))
            pos += _LEN.size
            if pos + size > file_size:
                break
            self._offsets.append(pos)
            self._sizes.append(size)
            pos += size

    def __len__(self) -> int:
        return len(self._sizes)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.read(index, 0, None)

    def __eq__(self, other):
        return isinstance(other, Sequence) and len(self) == len(other) and \
            all(a == b for a, b in zip(self, other))

    def size(self, height: int) -> int:
        """The block's length in bytes, without reading it."""
        return self._sizes[height]

    def header(self, height: int) -> bytes:
        """The block's 80-byte header, without reading the rest."""
        return self.read(height, 0, 80)

    def read(self, height: int, start: int, end) -> bytes:
        """Bytes `start` to `end` (None: the block's end) of a block: one pread."""
        size = self._sizes[height]
        end = size if end is None else min(end, size)
        return os.pread(self._fd, max(0, end - start), self._offsets[height] + start)

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self):
        self.close()


def block_record(raw: bytes) -> bytes:
    """A raw block as a file of blocks holds it: its length, then the block."""
    return _LEN.pack(len(raw)) + raw


def read_blocks(f) -> list:
    """The raw blocks of a file of block records, read one by one; a last record cut
    short (by a crash while it was appended) is left out."""
    blocks = []
    while len(header := f.read(_LEN.size)) == _LEN.size:
        (size,) = _LEN.unpack(header)
        raw = f.read(size)
        if len(raw) < size:
            break
        blocks.append(raw)
    return blocks
