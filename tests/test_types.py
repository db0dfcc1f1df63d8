"""mypy finds no error in the typed parts of the server.

CI runs nothing but the test suite, so the type check is a test: it runs
mypy, with the configuration in setup.cfg's [mypy] section, in a subprocess
and fails with mypy's report.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECKED = (
    "electrumx/chain",
    "electrumx/config/parsers.py",
    "electrumx/config/settings.py",
    "electrumx/index/__init__.py",
    "electrumx/index/block_processor.py",
    "electrumx/index/block_watch.py",
    "electrumx/index/layout.py",
    "electrumx/index/mempool.py",
    "electrumx/index/mempool_histogram.py",
    "electrumx/index/read_api.py",
    "electrumx/index/trouble_log.py",
    "electrumx/protocol/__init__.py",
    "electrumx/protocol/admission.py",
    "electrumx/protocol/banner.py",
    "electrumx/protocol/bans.py",
    "electrumx/protocol/batches.py",
    "electrumx/protocol/costs.py",
    "electrumx/protocol/deadline.py",
    "electrumx/protocol/errors.py",
    "electrumx/protocol/jsonrpc.py",
    "electrumx/protocol/methods/__init__.py",
    "electrumx/protocol/methods/arguments.py",
    "electrumx/protocol/methods/daemon.py",
    "electrumx/protocol/methods/headers.py",
    "electrumx/protocol/methods/mempool.py",
    "electrumx/protocol/methods/params.py",
    "electrumx/protocol/methods/scripthash.py",
    "electrumx/protocol/methods/transaction.py",
    "electrumx/protocol/send_budget.py",
    "electrumx/protocol/session_groups.py",
    "electrumx/protocol/stats.py",
    "electrumx/protocol/version.py",
    "electrumx/protocol/websocket_limits.py",
    "electrumx/protocol/websocket_site.py",
    "electrumx/protocol/websocket_session.py",
)
"""The packages and modules mypy checks.  The aim (issue 17) is the whole of
electrumx/chain, electrumx/index and electrumx/protocol; the modules of the
last two not listed yet still have errors to fix.  The settings' table and
parsers are checked too, as they type the `Settings` the server reads.  What
these import is read for its types, not reported on (follow_imports = silent)."""


def test_mypy_finds_no_error():
    result = subprocess.run([sys.executable, "-m", "mypy", *CHECKED], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    if result.returncode:
        pytest.fail(result.stdout + result.stderr, pytrace=False)
