"""bench/compare.py still runs end to end, at the smallest size (a smoke test, not timed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from processes import electrumx_python  # noqa: E402


def test_compare_runs_at_the_tiny_size(tmp_path):
    if electrumx_python() is None:
        message = "ElectrumX is not installed: run bench/setup_electrumx.sh"
        if os.environ.get("ELECTRUMX_REQUIRE_REFERENCE"):
            pytest.fail(message)
        pytest.skip(message)
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "compare.py"), "--size", "tiny",
                          "--seconds", "1", "--connections", "2", "--rounds", "1",
                          "--poll-ms", "200", "--timeout", "120", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "FULCRUM_BIN"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "padding delay disabled" in run.stdout
    [result] = tmp_path.glob("compare-tiny-*.json")
    assert result.with_suffix(".md").exists()
    servers = json.loads(result.read_text())["servers"]
    assert list(servers) == ["ours", "electrumx"]          # Fulcrum only when asked for
    for kind in ("ours", "electrumx"):
        assert servers[kind]["sync"]["tx_s"] > 0
        answered = servers[kind]["query"]["2"]["methods"]["all"]
        assert answered["requests"] > 0 and answered["mismatches"] == 0
        probed = servers[kind]["query"]["2"]["methods"]["get_history (busiest, probe)"]
        assert probed["requests"] > 0 and probed["mismatches"] == 0
        assert all(n["max_ms"] < 10_000 for n in servers[kind]["notifications"].values())
