"""`twistd electrumx-regtest` and `twistd electrumx --demo` as real processes."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

import orjson

from tests.fixtures.host import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_TWISTD = Path(sys.executable).parent / "twistd"
TWISTD = [str(VENV_TWISTD)] if VENV_TWISTD.exists() else \
    [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def start(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"),
               HOME=str(tmp_path))
    log = open(tmp_path / "twistd.log", "w+")
    proc = subprocess.Popen([*TWISTD, "-n", "--pidfile=", *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    return proc, log


def wait_for_line(log, text, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        content = log.read()
        if text in content:
            return content
        assert proc.poll() is None, content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged in time")


def rpc(port, method, *params):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=orjson.dumps({"id": 1, "method": method,
                                                        "params": list(params)}),
        headers={"Authorization": "Basic " + b64encode(b"regtest:regtest").decode()})
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())["result"]


def test_twistd_electrumx_regtest_serves_a_walkable_chain(tmp_path):
    port = free_port()
    proc, log = start(["electrumx-regtest", "--size", "tiny", "--port", str(port)], tmp_path)
    try:
        wait_for_line(log, "serving on", proc)
        height = rpc(port, "getblockcount")
        assert height == 30
        tip = rpc(port, "getblockhash", height)
        assert rpc(port, "getblock", tip, 1)["height"] == height
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_python_m_electrumx_regtest_refuses_bad_options_clearly(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "electrumx.regtest", "--size", "vast"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode != 0 and "--size must be one of tiny, small" in done.stdout
    done = subprocess.run([sys.executable, "-m", "electrumx.regtest", "--pay-to", "nope"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode != 0 and "not a regtest address: 'nope'" in done.stdout


def test_demo_indexes_and_serves_the_built_in_chain(tmp_path):
    port = free_port()
    proc, log = start(["electrumx", "--demo", "--services", f"tcp://127.0.0.1:{port}"],
                      tmp_path)
    try:
        content = wait_for_line(log, "serving tcp", proc, timeout=120)
        assert "caught up to height" in content
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            stream = sock.makefile("rwb")
            stream.write(b'{"id": 1, "method": "server.version", "params": ["t", "1.4"]}\n'
                         b'{"id": 2, "method": "blockchain.headers.subscribe"}\n')
            stream.flush()
            assert orjson.loads(stream.readline())["result"][1] == "1.4"
            assert orjson.loads(stream.readline())["result"]["height"] > 0
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0       # SIGTERM is a clean stop
        log.close()
