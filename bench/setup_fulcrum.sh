#!/usr/bin/env bash
# Builds Fulcrum (https://github.com/cculianu/Fulcrum) for bench/compare.py from a source
# tree you already have, with Debian's Qt 5 and RocksDB instead of Fulcrum's bundled static
# RocksDB.  Nothing of Fulcrum's is part of this project: the sources are yours, and the
# build goes to $FULCRUM_BUILD (default bench/.fulcrum/, ignored by git).
#
#     FULCRUM_SRC=/path/to/Fulcrum bash bench/setup_fulcrum.sh
#     FULCRUM_BIN=bench/.fulcrum/Fulcrum python bench/compare.py --size small
#
# Installs the Debian build packages (needs root), copies the sources into the build
# directory and patches the copy only: Debian bookworm's RocksDB is 7.8, which lacks
# ReadOptions::auto_readahead_size (RocksDB 8.x), set by one line of Storage.cpp in a
# table-conversion path of old databases that a fresh benchmark database never takes.
# Takes 15-30 minutes on 2 cores ($JOBS, default 2); running it again only relinks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${FULCRUM_SRC:?set FULCRUM_SRC to a Fulcrum source tree (git clone of cculianu/Fulcrum)}"
build="${FULCRUM_BUILD:-$here/.fulcrum}"
jobs="${JOBS:-2}"

[ -f "$src/Fulcrum.pro" ] || { echo "no Fulcrum.pro in $src" >&2; exit 1; }
packages=(g++ make pkg-config qtbase5-dev qt5-qmake qtbase5-dev-tools librocksdb-dev
          zlib1g-dev libbz2-dev libzmq3-dev libjemalloc-dev)
if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"
fi

mkdir -p "$build"
# The sources without the bundled static libraries (Debian's RocksDB is used instead).
tar -C "$src" --exclude=./staticlibs --exclude=./.git -cf - . | tar -C "$build" -xf -
storage="$build/src/Storage.cpp"
if grep -q 'auto_readahead_size' "$storage"; then
    sed -i '/rdOpts\.auto_readahead_size = /d' "$storage"
    echo "patched out ReadOptions::auto_readahead_size in $storage (RocksDB 7.8 lacks it)"
fi
cd "$build"
# LIBS on the command line skips Fulcrum's RocksDB probe and its static-library fallback.
qmake CONFIG+=release "LIBS+=-lrocksdb -lz -lbz2" Fulcrum.pro > qmake.log 2>&1 ||
    { cat qmake.log >&2; exit 1; }
make -j"$jobs" > make.log 2>&1 || { tail -40 make.log >&2; exit 1; }
echo "built $build/Fulcrum: $("$build/Fulcrum" --version 2>&1 | head -1)"
