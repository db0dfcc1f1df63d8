"""Fixtures of the wallet test: the README's demo as a child process, and Electrum's shell.

The demo is started as the README starts it (`twistd -n electrumx --demo`),
with options of the test's own so that it can run beside anything: free
ports (`--services`), a fresh index (`--db-directory`), its own chain cache,
and a block every BLOCK_INTERVAL_MS instead of every 30 s
(`--demo-block-interval`, the README's DEMO_BLOCK_INTERVAL).
"""

import sys
from pathlib import Path

import pytest

from tests.fixtures.host import free_port
from tests.wallet.electrum_cli import ElectrumShell, find_electrum
from tests.wallet.processes import Processes, clean_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
VENV_TWISTD = Path(sys.executable).parent / "twistd"
TWISTD = [str(VENV_TWISTD)] if VENV_TWISTD.exists() else \
    [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
BLOCK_INTERVAL_MS = 8000
"""Long enough for the wallet to see its payment unconfirmed first, short enough to keep
the test under a minute."""
WAIT = 60


@pytest.fixture
def processes(tmp_path):
    """A Processes whose children are all stopped at teardown."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


class Demo:
    """The running demo: its Electrum port, cache and log, and the commands it printed."""

    def __init__(self, processes, port, cache_dir):
        self.processes = processes
        self.port = port
        self.cache_dir = cache_dir

    def log(self) -> str:
        return (self.processes.log_dir / "demo.log").read_text(errors="replace")

    def printed_commands(self) -> list:
        """The `electrum` lines the demo printed at start (once it has printed them all)."""
        lines = [line.strip() for line in self.log().splitlines()]
        commands = [line for line in lines if line.startswith("electrum ")]
        return commands if any(c.endswith(" stop") for c in commands) else []


@pytest.fixture
def demo(processes, tmp_path):
    """The README's demo, serving Electrum clients on a free port, its commands printed."""
    port = free_port()
    cache = tmp_path / "cache"
    env = clean_env(PYTHONPATH=str(ROOT), HOME=str(tmp_path / "demo-home"),
                    XDG_CACHE_HOME=str(cache))
    proc = processes.start("demo", [
        *TWISTD, "-n", "--pidfile=", "electrumx", "--demo",
        "--services", f"tcp://127.0.0.1:{port},rpc://127.0.0.1:{free_port()}",
        "--db-directory", str(tmp_path / "index"),
        "--demo-block-interval", str(BLOCK_INTERVAL_MS)], env)
    running = Demo(processes, port, cache / "txelectrumx" / "regtest")

    def printed():
        assert proc.poll() is None, processes.log_of("demo")
        return running.printed_commands()
    wait_until(printed, WAIT, "the demo's wallet commands printed")
    return running


@pytest.fixture
def electrum(tmp_path):
    """Electrum's command line with a home of its own; its daemon ended at teardown."""
    find_electrum()
    home = tmp_path / "home"
    home.mkdir()
    shell = ElectrumShell(home, clean_env())
    yield shell
    shell.stop_daemon("electrum --regtest stop")
