"""Three real `twistd electrumx` processes on one regtest node find each other from one seed.

The node is the built-in regtest node, in the test's process; the servers are
twistd subprocesses on 127.0.0.1 (PEER_ALLOW_LOOPBACK=yes, which is what lets
loopback peers be checked, listed and announced).  Only A is anybody's seed:
B and C announce themselves to A, learn each other from A's list, check each
other and announce themselves to each other.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest_twisted
from twisted.internet import endpoints, reactor

from electrumx.config import SETTINGS
from tests.fixtures.host import free_port
from tests.protocol.test_transport import LineClient

ROOT = Path(__file__).resolve().parents[2]
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def start_server(tmp_path, name, node_url, port, seed_port):
    environ = {k: v for k, v in os.environ.items() if k not in {s.name for s in SETTINGS}}
    environ.update(PYTHONPATH=str(ROOT), COIN="Bitcoin", NET="regtest", DAEMON_URL=node_url,
                   DB_DIRECTORY=str(tmp_path / f"db-{name}"),
                   SERVICES=f"tcp://127.0.0.1:{port}",
                   REPORT_SERVICES=f"tcp://127.0.0.1:{port}",
                   PEER_ALLOW_LOOPBACK="yes", PEER_CHECK_SECS="2",
                   PEERS=f"127.0.0.1 t{seed_port}" if seed_port else "",
                   DAEMON_POLL_INTERVAL_BLOCKS="200", CACHE_MB="16", ALLOW_ROOT="yes")
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([*TWISTD, "-n", "--pidfile=", "--logfile=-", "electrumx"],
                            env=environ, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)


async def ask(port, method):
    """One request to a server (after server.version), or None while it is not up."""
    client = LineClient()
    try:
        await endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=2), client)
    except Exception:
        return None
    try:
        client.send({"id": 0, "method": "server.version", "params": ["test", "1.4"]},
                    {"id": 1, "method": method, "params": []})
        await client.reply()
        return (await client.reply())["result"]
    finally:
        client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_three_servers_find_each_other_from_one_seed(tmp_path, start_node):
    node = start_node()
    ports = {name: free_port() for name in "ABC"}
    processes = [start_server(tmp_path, "A", node.url, ports["A"], None),
                 start_server(tmp_path, "B", node.url, ports["B"], ports["A"]),
                 start_server(tmp_path, "C", node.url, ports["C"], ports["A"])]
    started = reactor.seconds()
    listed = {}
    try:
        async def poll():
            for name, port in ports.items():
                listed[name] = await ask(port, "server.peers.subscribe")
            return all(sorted(listed[name] or []) == sorted(
                ["127.0.0.1", "127.0.0.1", ["v1.7", f"t{ports[other]}"]]
                for other in ports if other != name) for name in ports)

        done = False
        while not done:
            assert all(p.poll() is None for p in processes), "a server died"
            for name in ports:
                text = (tmp_path / f"{name}.log").read_text()
                assert "Traceback" not in text, text
            assert reactor.seconds() - started < 120, f"no agreement in time: {listed}"
            done = await poll()
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ports}
    for name, text in logs.items():
        assert "Traceback" not in text, text
    # B and C knew only A; each heard of the other through A's list.
    assert f"peer 127.0.0.1 v1.7 t{ports['C']} verified (peer 127.0.0.1)" in logs["B"] or \
        f"peer 127.0.0.1 v1.7 t{ports['C']} verified (add_peer 127.0.0.1)" in logs["B"]
    assert f"t{ports['A']} verified (seed)" in logs["B"] and \
        f"t{ports['A']} verified (seed)" in logs["C"]
