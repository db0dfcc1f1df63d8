"""Generated chains on disk, so each size is generated once per machine.

A cache entry is a directory named by the workload's parameter digest,
holding `blocks.bin` (length-prefixed raw blocks) and `expected.json`.  It is
written to a temporary name and renamed into place, so a generator killed
half-way leaves no half entry behind.
"""

import json
import os
import shutil
import struct
import tempfile

from electrumx.regtest.workload import generate

FORMAT_VERSION = 1
_LEN = struct.Struct("<I")


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "txelectrumx", "regtest")


def load_or_generate(params, cache_dir=None, log=None):
    """(raw blocks, expected answers as JSON-ready dict) for the workload."""
    cache_dir = cache_dir or default_cache_dir()
    entry = os.path.join(cache_dir, f"v{FORMAT_VERSION}-{params.key()}")
    if os.path.isdir(entry):
        return _read(entry)
    blocks, expected = generate(params)
    expected = expected.as_json()
    os.makedirs(cache_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=cache_dir, prefix=".partial-")
    try:
        with open(os.path.join(tmp, "blocks.bin"), "wb") as f:
            for raw in blocks:
                f.write(_LEN.pack(len(raw)))
                f.write(raw)
        with open(os.path.join(tmp, "expected.json"), "w") as f:
            json.dump(expected, f)
        os.replace(tmp, entry)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(entry):
            raise
    if log is not None:
        log.info("generated regtest chain {entry}", entry=entry)
    return blocks, expected


def _read(entry):
    blocks = []
    with open(os.path.join(entry, "blocks.bin"), "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        (size,) = _LEN.unpack_from(data, pos)
        blocks.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size
    with open(os.path.join(entry, "expected.json")) as f:
        expected = json.load(f)
    return blocks, expected
