"""Debian's Electrum wallet (4.3.4), driven headless through its command line in regtest."""

import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

from tests.fixtures.host import required_program

# CI sets this so that a missing wallet fails the test instead of skipping it.
REQUIRE_ENV = "ELECTRUMX_REQUIRE_WALLET"


def find_electrum() -> str:
    """The `electrum` executable; skips the calling test without one, unless CI requires it."""
    return required_program(shutil.which("electrum"), "the Electrum wallet",
                            "apt-get install --no-install-recommends electrum", REQUIRE_ENV)


def sats(btc) -> int:
    """A BTC amount (Electrum's strings like "6.0386527", or a JSON number) in satoshis."""
    value = Decimal(str(btc)) * 100_000_000
    assert value == value.to_integral_value(), btc
    return int(value)


class ElectrumCLI:
    """`electrum --regtest -D DIR COMMAND ...` with JSON answers decoded.

    HOME is a directory of the test's own, so nothing outside the test's
    temporary directory is read or written.
    """

    def __init__(self, executable: str, home: Path, env: dict):
        self.executable = executable
        self.data_dir = home / "electrum"
        self.env = {**env, "HOME": str(home)}

    def argv(self, *args, offline=False) -> list:
        return [self.executable, "--regtest", "-D", str(self.data_dir),
                *(["--offline"] if offline else []), *args]

    def run(self, *args, offline=False, timeout=60) -> subprocess.CompletedProcess:
        """One command, whatever its exit status."""
        return subprocess.run(self.argv(*args, offline=offline), capture_output=True,
                              text=True, env=self.env, timeout=timeout)

    def __call__(self, *args, offline=False):
        """One command's answer (decoded JSON, or the bare text Electrum prints for strings)."""
        done = self.run(*args, offline=offline)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError:
            return done.stdout.strip()

    def daemon_argv(self, server_port: int) -> list:
        """The daemon in the foreground, on our server only (-1: no other servers, no peers)."""
        return self.argv("daemon", "-1", "-s", f"127.0.0.1:{server_port}:t")
