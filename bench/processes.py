"""The node and server processes the benchmarks run, on loopback, in a work directory.

Our server and the reference ElectrumX (installed by setup_electrumx.sh in its
own venv) are started alike: same node, same settings, each with its own
database and log in the work directory.  So is Fulcrum, when built
(setup_fulcrum.sh, fulcrum_launcher.py): the same settings, in its config file.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import fulcrum_launcher

ROOT = Path(__file__).resolve().parents[1]
TWISTD = "from twisted.scripts.twistd import run; run()"
ELECTRUMX_VENV = Path(os.environ.get("ELECTRUMX_VENV", ROOT / "bench" / ".electrumx-venv"))
LAUNCHER = ROOT / "bench" / "electrumx_launcher.py"
READY = {"ours": "serving tcp on", "electrumx": "TCP server listening on",
         "fulcrum": fulcrum_launcher.READY}
"""The log line each server writes once it is caught up and accepting clients."""
CAUGHT_UP = "caught up to height"
"""Ours and ElectrumX log this ("caught up to height N")."""
CAUGHT_UP_LINES = {"ours": CAUGHT_UP, "electrumx": CAUGHT_UP,
                   "fulcrum": fulcrum_launcher.CAUGHT_UP}
"""What each server logs once it has synced to the node's tip."""
DB_NAMES = {"ours": "db", "electrumx": "electrumx-db", "fulcrum": fulcrum_launcher.DB_NAME}
"""Each server's database directory in the work directory."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dir_size(path) -> int:
    """Bytes in the files under `path` (a server's database)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


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


def start_node(work: Path, size: str, timeout: float, cache_dir=None, txindex=None,
               extra_args=()):
    """The built-in regtest node in its own process: (process, RPC port).  `txindex` 0 or 1
    overrides its default (1, which ElectrumX needs); `extra_args` are more of its options."""
    port = free_port()
    log = work / "node.log"
    args = [sys.executable, "-m", "electrumx.regtest", "--size", size, "--port", str(port),
            *extra_args]
    if txindex is not None:
        args += ["--txindex", str(txindex)]
    if cache_dir:
        args += ["--cache-dir", str(cache_dir)]
    node = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=base_env(), cwd=work)
    wait_for(log, "serving on", node, timeout)
    return node, port


def server_env(work: Path, node_port: int, db_name: str, **settings):
    """The ElectrumX-style environment both servers read (same names, same meanings)."""
    return dict(ALLOW_ROOT="1", COIN="Bitcoin", NET="regtest",
                DAEMON_URL=f"http://regtest:regtest@127.0.0.1:{node_port}/",
                DB_DIRECTORY=str(work / db_name), PEER_DISCOVERY="off", PEER_ANNOUNCE="",
                **settings)


def start_server(work: Path, node_port: int, **settings):
    """`twistd -n electrumx` against the node; returns (process, log path).  Not waited for."""
    env = dict(base_env(), **server_env(work, node_port, "db", **settings))
    log = work / "server.log"
    server = subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "electrumx"],
                              stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                              cwd=work)
    return server, log


def electrumx_python():
    """The reference ElectrumX venv's python, or None when setup_electrumx.sh has not run."""
    python = ELECTRUMX_VENV / "bin" / "python"
    return python if python.exists() else None


def start_electrumx(work: Path, node_port: int, **settings):
    """ElectrumX 2.0 (padding delay off) against the node: (process, log path).  Not waited for.

    Its environment has no PYTHONPATH, so `electrumx` is ElectrumX's own package.
    """
    python = electrumx_python()
    if python is None:
        raise SystemExit(f"no ElectrumX in {ELECTRUMX_VENV}: run bench/setup_electrumx.sh")
    db = work / "electrumx-db"
    db.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(server_env(work, node_port, db.name, DB_ENGINE="leveldb", **settings))
    log = work / "electrumx.log"
    server = subprocess.Popen([str(python), "-I", str(LAUNCHER)], stdout=log.open("w"),
                              stderr=subprocess.STDOUT, env=env, cwd=work)
    return server, log


def start(kind: str, work: Path, node_port: int, **settings):
    """start_server ("ours"), start_electrumx ("electrumx") or Fulcrum ("fulcrum", the
    binary in $FULCRUM_BIN)."""
    starter = {"ours": start_server, "electrumx": start_electrumx,
               "fulcrum": fulcrum_launcher.start_fulcrum}[kind]
    return starter(work, node_port, **settings)


def stop(*procs):
    """Terminate each process given and wait for it (killed after 30 s); None is skipped,
    for a process that was never started."""
    for proc in procs:
        if proc is None or proc.poll() is not None:
            continue
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def index_tx_counts(db_dir: Path):
    """The chain's transaction count after each height, from our server's index (closed)."""
    sys.path.insert(0, str(ROOT))
    from electrumx.coins import BitcoinRegtest
    from electrumx.index.db import IndexDB
    db = IndexDB(str(db_dir), BitcoinRegtest)
    db.open()
    try:
        return list(db.tx_counts)
    finally:
        db.close()
