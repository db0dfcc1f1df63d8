"""How a real `twistd -n electrumx --demo` process ends: its exit status and its last words.

A fatal error (an index another process holds, an unusable DB_DIRECTORY, a
port that cannot be bound, a service that cannot start) ends the process with
status 1 and one critical log line saying why, whether it comes before the
reactor runs or after; SIGTERM and SIGINT end it with status 0 after a clean
shutdown.  Each process here takes a second or two; every wait has a timeout,
so a server that hangs fails its test instead of blocking the suite.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import plyvel
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.ssh import keys

from electrumx.coins import BitcoinRegtest
from electrumx.index.db import IndexDB
from tests.config.test_tap import twistd, twistd_environment
from tests.fixtures.host import free_port

EXIT_SECS = 30
"""Longest wait for a process to end (or to log a line): about twenty times what
it takes on a loaded two-core machine, short enough that a hang fails soon."""


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """One cache of the demo's generated chain for every process here."""
    return {"XDG_CACHE_HOME": str(tmp_path_factory.mktemp("demo-cache"))}


def run_demo(tmp_path, demo_cache, *args, db=None):
    """Run `twistd -n electrumx --demo` until it ends by itself: the completed process."""
    return twistd("-n", "--pidfile=", "--logfile=-", "electrumx", "--demo",
                  "--db-directory", str(db or tmp_path / "db"), *args,
                  env=demo_cache, cwd=tmp_path, timeout=EXIT_SECS)


def critical_lines(log: str) -> list:
    """The messages of the critical log lines."""
    return [line.split("#critical] ", 1)[1] for line in log.splitlines()
            if "#critical] " in line]


def assert_stopped_with(result, message):
    """Exit status 1, and `message` the one critical line, with no traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert critical_lines(output) == [f"stopping: {message}"], output
    assert "Traceback" not in output


@pytest.fixture
def busy_port():
    """A port on 127.0.0.1 that another socket listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def index_path(db_directory) -> str:
    return IndexDB(str(db_directory), BitcoinRegtest).path


# ---- fatal errors at start-up, before the reactor runs ---------------------------------

def test_an_index_another_process_holds_stops_the_start(tmp_path, demo_cache):
    path = index_path(tmp_path / "db")
    os.makedirs(path)
    held = plyvel.DB(path, create_if_missing=True)          # this process holds its LOCK
    try:
        started = time.monotonic()
        result = run_demo(tmp_path, demo_cache, "--services", f"rpc://127.0.0.1:{free_port()}")
    finally:
        held.close()
    assert_stopped_with(result, f"cannot open the index at {path}: IO error: lock {path}/LOCK: "
                                "Resource temporarily unavailable")
    assert time.monotonic() - started < EXIT_SECS / 2


def test_a_db_directory_under_a_regular_file_stops_the_start(tmp_path, demo_cache):
    # Not a chmod: the tests may run as root, who writes anywhere.
    (tmp_path / "file").write_text("not a directory")
    db = tmp_path / "file" / "db"
    result = run_demo(tmp_path, demo_cache, db=db)
    assert_stopped_with(result, f"cannot open the index at {index_path(db)}: [Errno 20] Not a "
                                f"directory: '{db}'")


@pytest.mark.parametrize("label, args", [
    ("admin-rpc", lambda port: ["--services", f"rpc://127.0.0.1:{port}"]),
    ("metrics", lambda port: ["--services", "", "--metrics-port", str(port)]),
    ("admin-shell", lambda port: ["--services", "", "--admin-ssh-port", str(port)]),
])
def test_a_busy_admin_port_stops_the_start(tmp_path, demo_cache, busy_port, label, args):
    result = run_demo(tmp_path, demo_cache, *args(busy_port), *admin_shell_keys(tmp_path))
    assert_stopped_with(result, f"cannot listen for {label} on 127.0.0.1:{busy_port}: Address "
                                "already in use")
    assert "serving" not in result.stdout


def admin_shell_keys(tmp_path) -> list:
    """The authorized_keys option the admin shell needs (one fresh client key)."""
    authorized = tmp_path / "authorized_keys"
    client = keys.Key(ed25519.Ed25519PrivateKey.generate())
    authorized.write_bytes(client.public().toString("openssh") + b" client\n")
    return ["--admin-ssh-authorized-keys", str(authorized)]


def test_a_service_that_cannot_start_stops_the_start(tmp_path, demo_cache):
    host_key = tmp_path / "ssh_host_key"
    host_key.write_text("not a key")
    host_key.chmod(0o600)
    result = run_demo(tmp_path, demo_cache, "--admin-ssh-port", str(free_port()),
                      "--admin-ssh-host-key", str(host_key), *admin_shell_keys(tmp_path))
    assert_stopped_with(result, f"cannot start admin-shell: cannot use {host_key} as the admin "
                                "shell's SSH host key (cannot guess the type of b'not a key'); "
                                "move it aside to have a new one made")


# ---- a fatal error once running ---------------------------------------------------------

def test_a_busy_client_port_found_once_caught_up_stops_the_server(tmp_path, demo_cache,
                                                                   busy_port):
    result = run_demo(tmp_path, demo_cache, "--services", f"tcp://127.0.0.1:{free_port()},"
                                                          f"ws://127.0.0.1:{busy_port}")
    assert_stopped_with(result, f"cannot listen for ws on 127.0.0.1:{busy_port}: Address "
                                "already in use")
    caught_up = result.stdout.index("caught up to height")
    assert caught_up < result.stdout.index("#critical]"), "the reactor was running by then"


# ---- clean stops -------------------------------------------------------------------------

class Server:
    """A `twistd -n electrumx --demo` process we stop, its log in a file."""

    # SIGINT handled as in a terminal, even when the tests themselves run as a background
    # job, which starts every program with SIGINT ignored (and twistd leaves it so).
    TWISTD = [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, "
                                    "signal.default_int_handler); "
                                    "from twisted.scripts.twistd import run; run()"]

    def __init__(self, tmp_path, demo_cache, *args):
        self.db = tmp_path / "db"
        self.log_path = tmp_path / "twistd.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [*self.TWISTD, "-n", "--pidfile=", "electrumx", "--demo", "--db-directory",
                 str(self.db), *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                env=twistd_environment(demo_cache))

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, text):
        deadline = time.monotonic() + EXIT_SECS
        while text not in self.log():
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, f"{text!r} not logged in time:\n{self.log()}"
            time.sleep(0.05)

    def stop(self, number) -> int:
        """Send signal `number`; the exit status."""
        self.process.send_signal(number)
        return self.process.wait(timeout=EXIT_SECS)

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server(tmp_path, demo_cache):
    started = []

    def start(*args):
        started.append(Server(tmp_path, demo_cache, *args))
        return started[-1]
    yield start
    for each in started:
        each.kill()


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_server_cleanly_with_status_0(server, number):
    running = server("--services", f"tcp://127.0.0.1:{free_port()}")
    running.wait_for("serving tcp on")
    assert running.stop(number) == 0, running.log()
    log = running.log()
    assert f"received {signal.Signals(number).name}, stopping" in log
    assert "Main loop terminated." in log, "twistd's own shutdown ran to its end"
    assert critical_lines(log) == [] and "Traceback" not in log
    height = int(log.split("caught up to height ")[1].split()[0])
    index = IndexDB(str(running.db), BitcoinRegtest)
    index.open()                                    # its LOCK was released
    assert index.height == height
    index.close()


def test_serving_no_client_is_warned_of(server):
    running = server("--services", "")
    running.wait_for("SERVICES has no tcp, ssl, ws or wss service: the server will index the "
                     "chain and serve no client")
    # The warning comes before the reactor runs, and with it our signal handlers.
    running.wait_for("caught up to height")
    assert running.stop(signal.SIGTERM) == 0
