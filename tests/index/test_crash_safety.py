"""kill -9 at random moments never corrupts the index; a full disk stops it cleanly.

A real server process indexes the built-in regtest node (served from this
test process) while the node reveals blocks and reorganises; the server is
killed with SIGKILL at random points and restarted.  At the end the index's
digest must equal that of a clean index of the node's final chain.

CI runs 10 kill points; ELECTRUMX_SLOW=1 runs 100.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from electrumx.coins import BitcoinRegtest
from electrumx.index.db import IndexDB
from tests.fixtures.regtest import reference_digest, tiny_chain

ROOT = Path(__file__).resolve().parents[2]
TWISTD = "from twisted.scripts.twistd import run; run()"
SLOW = os.environ.get("ELECTRUMX_SLOW") == "1"


def server_process(node, db_dir, log_path, extra_env=None, preexec=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), ALLOW_ROOT="1", COIN="Bitcoin",
               NET="regtest", DAEMON_URL=node.url, DB_DIRECTORY=str(db_dir), CACHE_MB="16",
               DAEMON_POLL_INTERVAL_BLOCKS="50", DAEMON_POLL_INTERVAL_MEMPOOL="200",
               SERVICES="", **(extra_env or {}))
    return subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "electrumx"],
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env,
                            cwd=str(db_dir.parent), preexec_fn=preexec)


async def sleep(seconds):
    await task.deferLater(reactor, seconds, lambda: None)


async def wait_for_log(proc, log_path, text, timeout=120):
    waited = 0.0
    while text not in Path(log_path).read_text():
        assert proc.poll() is None, Path(log_path).read_text()[-3000:]
        assert waited < timeout, f"{text!r} not logged in time"
        await sleep(0.05)
        waited += 0.05


async def wait_for_exit(proc, timeout, what, log_path=None):
    """Wait until `proc` exits; past `timeout` seconds, kill it and fail, quoting its log."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log = Path(log_path).read_text()[-3000:] if log_path else ""
            pytest.fail(f"{what} did not exit within {timeout:g}s, so it was killed\n{log}")
        await sleep(0.05)


async def stop(proc, timeout=60):
    """Stop `proc` with SIGTERM, as an operator would, and wait for it to exit."""
    proc.send_signal(signal.SIGTERM)
    await wait_for_exit(proc, timeout, f"process {proc.pid}, sent SIGTERM,")


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_kill_9_at_random_points_converges_to_a_clean_index(
        start_node, tmp_path, tmp_path_factory):
    kills = 100 if SLOW else 10
    rng = random.Random(20261125)
    blocks, _expected = tiny_chain(tmp_path_factory, "large")
    reveal_rounds = int(kills * 0.7)
    step = len(blocks) // (reveal_rounds + 1)
    node = start_node(blocks=blocks, reveal=step)
    db_dir = tmp_path / "db"
    log_path = tmp_path / "server.log"
    killed_mid_sync = 0
    for round_ in range(kills):
        proc = server_process(node, db_dir, log_path)
        if round_ == 0:
            # One kill early in the initial sync, whatever the machine's speed.
            await wait_for_log(proc, log_path, "index at height")
            await sleep(0.05)
        else:
            await sleep(rng.uniform(0.2, 1.0))
        caught_up = "caught up" in log_path.read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_mid_sync += not caught_up
        # The chain moves on while the server is down: first new blocks arrive, then
        # (a reorg drops the rest of the pregenerated chain) reorgs and mined churn.
        if round_ < reveal_rounds:
            node.node.reveal(node.node.height + step)
        else:
            node.node.reorg(rng.randint(1, 4))
            node.node.add_random_transactions(30, rng)
            node.node.mine(rng.randint(1, 3))
    final_height = node.node.height
    proc = server_process(node, db_dir, log_path)
    await wait_for_log(proc, log_path, f"caught up to height {final_height}")
    await stop(proc)
    db = IndexDB(str(db_dir), BitcoinRegtest)
    db.open()
    try:
        digest = db.digest()
        assert db.height == final_height
    finally:
        db.close()
    assert digest == reference_digest(tmp_path / "clean", node.node.blocks[:final_height + 1])
    assert killed_mid_sync > 0


@pytest_twisted.ensureDeferred
async def test_a_full_disk_stops_the_server_with_a_clear_message(start_node, tmp_path,
                                                                 tmp_path_factory):
    """The kernel refuses writes past a file-size limit: a real I/O error, mid-sync."""
    import resource

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    blocks, _expected = tiny_chain(tmp_path_factory, "medium")
    node = start_node(blocks=blocks)
    db_dir = tmp_path / "db"
    log_path = tmp_path / "server.log"
    proc = server_process(node, db_dir, log_path, preexec=limit_file_size)
    await wait_for_exit(proc, 300, "the server, given a full disk,", log_path)
    log = log_path.read_text()
    assert proc.returncode != 0
    assert "writing the index failed" in log or "File too large" in log, log[-3000:]
    # What is on disk is a consistent index at its last good flush.
    db = IndexDB(str(db_dir), BitcoinRegtest)
    db.open()
    try:
        height = db.height
        digest = db.digest()
    finally:
        db.close()
    assert height < len(blocks) - 1
    if height >= 0:
        assert digest == reference_digest(tmp_path / "clean", blocks[:height + 1])
