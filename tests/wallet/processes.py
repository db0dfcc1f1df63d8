"""Child processes for the wallet test: each logs to a file, every wait is bounded.

The wallet test runs three real programs (the regtest node, our server and
Electrum's daemon).  A hung one must fail the test with its log, not hang CI.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from electrumx.config import SETTINGS


def wait_until(condition, timeout, what, interval=0.25):
    """Call `condition` until it returns something truthy and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {result!r})")
        time.sleep(interval)


class Processes:
    """Starts named child processes with their output in `log_dir/NAME.log`; stops them all."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.running = {}          # name -> (Popen, log file)

    def start(self, name, argv, env) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")
        # A session of its own, so a signal meant for pytest never reaches the children.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=self.log_dir, start_new_session=True)
        self.running[name] = (proc, log)
        return proc

    def log_of(self, name, last=40) -> str:
        """The last lines a process wrote, for failure messages."""
        text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-last:])

    def wait_for_port(self, name, port, timeout=60):
        """Until 127.0.0.1:port accepts connections; fails at once if process `name` exits."""
        proc = self.running[name][0]

        def accepting():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited ({proc.returncode}):\n{self.log_of(name)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True
        wait_until(accepting, timeout, f"{name} listening on port {port}")

    def stop_all(self, timeout=15):
        """SIGTERM every process still running (newest first), SIGKILL any that lingers."""
        for proc, log in reversed(list(self.running.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            log.close()


def clean_env(**extra) -> dict:
    """This process's environment minus PYTHONPATH and the server's settings, plus `extra`.

    Children get exactly the paths and settings the test gives them, whatever
    the shell that ran pytest had exported.
    """
    drop = {"PYTHONPATH"} | {s.name for s in SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env
