"""Debian's Electrum wallet (4.3.4), driven headless through its command line in regtest.

The commands are run as the README gives them, by a shell (`payto ... |
broadcast -` is a pipeline), with a HOME of the test's own: Electrum keeps
its wallets and settings in ~/.electrum, so nothing outside the test's
temporary directory is read or written.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

from tests.fixtures.host import required_program

# CI sets this so that a missing wallet fails the test instead of skipping it.
REQUIRE_ENV = "ELECTRUMX_REQUIRE_WALLET"
ELECTRUM = "electrum --regtest"
"""How every command line of the README starts."""


def find_electrum() -> str:
    """The `electrum` executable; skips the calling test without one, unless CI requires it."""
    return required_program(shutil.which("electrum"), "the Electrum wallet",
                            "apt-get install --no-install-recommends electrum", REQUIRE_ENV)


def sats(btc) -> int:
    """A BTC amount (Electrum's strings like "6.0386527", or a JSON number) in satoshis."""
    value = Decimal(str(btc)) * 100_000_000
    assert value == value.to_integral_value(), btc
    return int(value)


class ElectrumShell:
    """Runs `electrum` command lines in a shell, as a user types them."""

    def __init__(self, home: Path, env: dict):
        self.home = home
        self.env = {**env, "HOME": str(home)}
        self.daemon_group = None        # the process group of `daemon -d`, once started

    def run(self, line: str, timeout=60) -> subprocess.CompletedProcess:
        """One command line, whatever its exit status."""
        return subprocess.run(line, shell=True, capture_output=True, text=True, env=self.env,
                              cwd=self.home, timeout=timeout)

    def __call__(self, line: str):
        """A command line's answer (decoded JSON, or the bare text Electrum prints)."""
        done = self.run(line)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        try:
            return json.loads(done.stdout)
        except json.JSONDecodeError:
            return done.stdout.strip()

    def query(self, command: str):
        """`electrum --regtest COMMAND`: the test's own look at the wallet."""
        return self(f"{ELECTRUM} {command}")

    def start_daemon(self, line: str, log: Path, timeout=60):
        """Run the README's `daemon -d` line: Electrum forks the daemon and returns.

        The line runs in a session of its own, and Electrum's fork stays in
        its process group, so `stop_daemon` can always end the daemon.
        """
        with open(log, "wb") as out:
            proc = subprocess.Popen(line, shell=True, stdout=out, stderr=subprocess.STDOUT,
                                    env=self.env, cwd=self.home, start_new_session=True)
        self.daemon_group = proc.pid
        assert proc.wait(timeout) == 0, log.read_text(errors="replace")

    def stop_daemon(self, stop_line: str, timeout=30):
        """The README's `stop` line; then a signal to whatever of the daemon lingers."""
        if self.daemon_group is None:
            return
        try:
            self.run(stop_line, timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + timeout
        for sig in (signal.SIGTERM, signal.SIGKILL):
            while time.monotonic() < deadline:
                try:
                    os.killpg(self.daemon_group, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.2)
            try:
                os.killpg(self.daemon_group, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + 5
