"""bench/fulcrum_launcher.py: compare.py's settings become Fulcrum's config file.

Fulcrum itself is not needed (CI never builds it): this checks the file written.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from fulcrum_launcher import fulcrum_binary, fulcrum_config  # noqa: E402

SETTINGS = dict(CACHE_MB="1200", DAEMON_POLL_INTERVAL_BLOCKS="1000",
                DAEMON_POLL_INTERVAL_MEMPOOL="1000", MAX_SESSIONS="1000",
                COST_SOFT_LIMIT="1000000000", REQUEST_TIMEOUT="60", LOG_LEVEL="info")


def parse(text):
    return dict(line.split(" = ", 1) for line in text.splitlines())


def test_the_config_maps_compares_settings(tmp_path):
    config = parse(fulcrum_config(tmp_path, 18443, "127.0.0.1:50001", **SETTINGS))
    assert config == {
        "datadir": str(tmp_path / "fulcrum-db"), "bitcoind": "127.0.0.1:18443",
        "rpcuser": "regtest", "rpcpassword": "regtest", "tcp": "127.0.0.1:50001",
        "polltime": "1", "db_mem": "1200.0", "bitcoind_timeout": "60.0",
        "max_clients_per_ip": "0", "max_history": "25000000", "max_buffer": "100000000",
        "peering": "false", "announce": "false", "debug": "false"}


def test_a_poll_interval_fulcrum_refuses_is_refused_here(tmp_path):
    settings = dict(SETTINGS, DAEMON_POLL_INTERVAL_BLOCKS="200")
    with pytest.raises(SystemExit, match="at least 500 ms"):
        fulcrum_config(tmp_path, 18443, "127.0.0.1:50001", **settings)
    config = parse(fulcrum_config(tmp_path, 18443, "127.0.0.1:50001",
                                  **dict(SETTINGS, DAEMON_POLL_INTERVAL_BLOCKS="500")))
    assert config["polltime"] == "0.5"


def test_the_binary_must_be_an_executable(tmp_path, monkeypatch):
    monkeypatch.delenv("FULCRUM_BIN", raising=False)
    with pytest.raises(SystemExit, match="set FULCRUM_BIN"):
        fulcrum_binary()
    text = tmp_path / "Fulcrum"
    text.write_text("not a program")
    with pytest.raises(SystemExit, match="not an executable"):
        fulcrum_binary(str(text))
    text.chmod(0o755)
    monkeypatch.setenv("FULCRUM_BIN", str(text))
    assert fulcrum_binary() == text
