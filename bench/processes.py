"""The node and server processes the benchmarks run, on loopback, in a work directory."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWISTD = "from twisted.scripts.twistd import run; run()"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path, text, proc, timeout):
    """Wait until `text` is in the log at `path`; exit if `proc` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[:3]} exited:\n{path.read_text()[-2000:]}")
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {text!r} in {path}")


def base_env():
    return dict(os.environ, PYTHONPATH=str(ROOT))


def start_node(work: Path, size: str, timeout: float, cache_dir=None):
    """The built-in regtest node in its own process: (process, RPC port)."""
    port = free_port()
    log = work / "node.log"
    args = [sys.executable, "-m", "electrumx.regtest", "--size", size, "--port", str(port)]
    if cache_dir:
        args += ["--cache-dir", str(cache_dir)]
    node = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=base_env(), cwd=work)
    wait_for(log, "serving on", node, timeout)
    return node, port


def start_server(work: Path, node_port: int, **settings):
    """`twistd -n electrumx` against the node; returns (process, log path).  Not waited for."""
    env = dict(base_env(), ALLOW_ROOT="1", COIN="Bitcoin", NET="regtest",
               DAEMON_URL=f"http://regtest:regtest@127.0.0.1:{node_port}/",
               DB_DIRECTORY=str(work / "db"), **settings)
    log = work / "server.log"
    server = subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "electrumx"],
                              stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                              cwd=work)
    return server, log


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
