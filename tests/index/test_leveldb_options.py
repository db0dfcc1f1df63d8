"""The DB_* LevelDB settings, applied to real LevelDB files: each opens the index, is seen in
the table files it writes, and may change from one start to the next without a change to
what the index holds."""

from pathlib import Path

import pytest

from electrumx.coins import BitcoinRegtest
from electrumx.config.settings import BY_NAME
from electrumx.controller import leveldb_options
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.db import IndexDB, LevelDBOptions
from tests.config.helpers import load
from tests.fixtures.blocks import build_chain

BLOOM_POLICY = b"filter.leveldb.BuiltinBloomFilter2"
"""The name LevelDB writes into a table file's meta-index when the file has a bloom filter."""

OPTION_SETS = [LevelDBOptions(),
               LevelDBOptions(bloom_bits=10),
               LevelDBOptions(block_cache_mb=8),
               LevelDBOptions(block_cache_mb=256),
               LevelDBOptions(compression="none"),
               LevelDBOptions(write_buffer_mb=1),
               LevelDBOptions(write_buffer_mb=64)]


def index_chain(directory: Path, options: LevelDBOptions) -> str:
    """Index the fixture chain into a new database opened with `options`, compact it so that
    everything is in table files, and return its digest."""
    db = IndexDB(str(directory), BitcoinRegtest, options)
    db.open()
    try:
        bp = BlockProcessor(db, reorg_limit=10)
        for raw in build_chain().blocks:
            bp.advance_block(raw)
        bp.flush(first_sync=False)
        db.compact()
        return db.digest()
    finally:
        db.close()


def table_files(directory: Path) -> list[bytes]:
    return [path.read_bytes() for path in directory.rglob("*.ldb")]


@pytest.fixture(scope="module")
def reference_digest(tmp_path_factory):
    return index_chain(tmp_path_factory.mktemp("reference"), LevelDBOptions())


@pytest.mark.parametrize("options", OPTION_SETS, ids=repr)
def test_each_setting_indexes_the_same_chain(tmp_path, options, reference_digest):
    assert index_chain(tmp_path, options) == reference_digest
    db = IndexDB(str(tmp_path), BitcoinRegtest, options)
    db.open(for_sync=False)
    try:
        assert db.height == len(build_chain().blocks) - 1
        assert db.digest() == reference_digest
    finally:
        db.close()


def test_a_bloom_filter_is_written_only_when_set(tmp_path):
    index_chain(tmp_path / "none", LevelDBOptions())
    index_chain(tmp_path / "bloom", LevelDBOptions(bloom_bits=10))
    assert table_files(tmp_path / "none") and table_files(tmp_path / "bloom")
    assert not any(BLOOM_POLICY in data for data in table_files(tmp_path / "none"))
    assert all(BLOOM_POLICY in data for data in table_files(tmp_path / "bloom"))


def test_without_compression_the_table_files_are_larger(tmp_path):
    index_chain(tmp_path / "snappy", LevelDBOptions())
    index_chain(tmp_path / "none", LevelDBOptions(compression="none"))
    size = {name: sum(map(len, table_files(tmp_path / name))) for name in ("snappy", "none")}
    assert size["none"] > size["snappy"]


def test_the_settings_may_change_between_two_starts(tmp_path, reference_digest):
    """Files written with a filter and snappy stay readable, and compactable, once the index
    is opened without either or with another filter."""
    index_chain(tmp_path, LevelDBOptions(bloom_bits=10))
    for options in (LevelDBOptions(compression="none"), LevelDBOptions(bloom_bits=20)):
        db = IndexDB(str(tmp_path), BitcoinRegtest, options)
        db.open()
        try:
            assert db.digest() == reference_digest
            db.compact()
            assert db.digest() == reference_digest
        finally:
            db.close()


def test_the_server_opens_the_index_as_set():
    assert leveldb_options(load()) == LevelDBOptions()
    assert leveldb_options(load({"DB_BLOOM_BITS": "12", "DB_BLOCK_CACHE_MB": "512",
                                 "DB_WRITE_BUFFER_MB": "32", "DB_COMPRESSION": "None"})) == \
        LevelDBOptions(bloom_bits=12, block_cache_mb=512, write_buffer_mb=32,
                       compression="none")


def test_the_defaults_of_the_settings_are_those_of_the_options():
    defaults = LevelDBOptions()
    assert [BY_NAME[name].default for name in ("DB_BLOOM_BITS", "DB_BLOCK_CACHE_MB",
                                               "DB_WRITE_BUFFER_MB", "DB_COMPRESSION")] == \
        [str(defaults.bloom_bits), str(defaults.block_cache_mb),
         str(defaults.write_buffer_mb), defaults.compression]
