"""Generated chains on disk, so each workload is generated once per machine.

A cache entry is a directory named by the format version and the workload's
parameter digest, holding `blocks.bin` (length-prefixed raw blocks) and
`expected.json`.  It is written under a temporary name and renamed into
place, so a generator killed half-way never leaves a half entry behind, and
two processes generating the same chain at once both end with a whole one.
"""

import json
import os
import shutil
import struct
import tempfile
from typing import NamedTuple

from electrumx.regtest.workload import generate_into

# Bump when the generator's output changes for the same parameters.
FORMAT_VERSION = 2
_LEN = struct.Struct("<I")


class GeneratedChain(NamedTuple):
    """Raw blocks (genesis first) and the expected answers as a JSON-ready dict.

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
            def write_block(raw):
                f.write(_LEN.pack(len(raw)))
                f.write(raw)
            expected = generate_into(params, write_block)
        with open(os.path.join(tmp, "expected.json"), "w") as f:
            json.dump(expected.as_json(), f)
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(entry):        # not merely beaten to it by another process
            raise


def _read(entry) -> GeneratedChain:
    """The entry's chain, read block by block (never the whole file and its copy at once)."""
    blocks = []
    with open(os.path.join(entry, "blocks.bin"), "rb") as f:
        while header := f.read(_LEN.size):
            (size,) = _LEN.unpack(header)
            blocks.append(f.read(size))
    with open(os.path.join(entry, "expected.json")) as f:
        expected = json.load(f)
    return GeneratedChain(blocks, expected)
