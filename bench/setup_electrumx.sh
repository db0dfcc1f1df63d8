#!/usr/bin/env bash
# Installs the reference ElectrumX (e-x 2.0.0 from the package index, with LevelDB) in its
# own virtual environment, so it never mixes with ours.  The venv is
# $ELECTRUMX_VENV, or bench/.electrumx-venv; running this again is quick when it is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${ELECTRUMX_VENV:-$here/.electrumx-venv}"
version="2.0.0"
python="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] &&
   "$venv/bin/python" -I -c "import electrumx, plyvel; assert electrumx.__version__ == '$version'" \
       2>/dev/null; then
    echo "ElectrumX $version is in $venv"
    exit 0
fi
# plyvel builds from source where no wheel fits; it needs a compiler and LevelDB's headers.
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "e-x[leveldb]==$version"
"$venv/bin/python" -I -c "import electrumx, plyvel; print('ElectrumX', electrumx.__version__, 'in $venv')"
