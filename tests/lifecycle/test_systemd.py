"""sd_notify messages reach a real datagram socket named by $NOTIFY_SOCKET."""

import os
import shutil
import socket
import subprocess
import sys

import pytest
import pytest_twisted

from electrumx.systemd import SystemdNotifier
from tests.conftest import REPOSITORY
from tests.fixtures.host import free_port
from tests.fixtures.regtest import wait_for
from tests.fixtures.twistd import TwistdProcess
from tests.protocol.test_transport import connect, version


def listening_socket(tmp_path, abstract=False):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"notify-{id(sock)}" if abstract else str(tmp_path / "notify")
    sock.bind("\0" + name if abstract else name)
    sock.settimeout(5)
    return sock, ("@" + name if abstract else name)


def test_ready_status_and_stopping_arrive_as_datagrams(tmp_path):
    sock, path = listening_socket(tmp_path)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    notifier.status("height 10/100 (10.0%)")
    notifier.status("height 10/100 (10.0%)")        # unchanged: not sent again
    notifier.ready("serving at height 100")
    notifier.stopping()
    assert [sock.recv(4096) for _ in range(3)] == [
        b"STATUS=height 10/100 (10.0%)", b"READY=1\nSTATUS=serving at height 100",
        b"STOPPING=1\nSTATUS=stopping"]
    notifier.close()


def test_abstract_namespace_socket(tmp_path):
    sock, path = listening_socket(tmp_path, abstract=True)
    SystemdNotifier({"NOTIFY_SOCKET": path}).ready("serving")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"


def test_without_systemd_or_with_a_dead_socket_nothing_breaks(tmp_path):
    SystemdNotifier({}).ready("serving")
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    notifier.ready("serving")
    notifier.status("still here")
    assert notifier.enabled


@pytest_twisted.ensureDeferred
async def test_a_real_server_tells_systemd_ready_status_and_stopping(tmp_path):
    """`twistd -n electrumx` under a fake systemd: READY=1 once it serves, STATUS= as its
    sessions change, STOPPING=1 at SIGTERM, then exit status 0."""
    sock, path = listening_socket(tmp_path)
    sock.setblocking(False)
    messages = []

    def received():
        try:
            while True:
                messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages

    port = free_port()
    process = TwistdProcess.start(
        {"NOTIFY_SOCKET": path, "SERVICES": f"tcp://127.0.0.1:{port}",
         "XDG_CACHE_HOME": str(tmp_path / "cache")}, tmp_path,
        args=["--demo", "--db-directory", str(tmp_path / "db")], twistd_args=["--logfile=-"],
        prelude="import electrumx.controller as c; c.SYSTEMD_STATUS_SECS = 0.1")
    try:
        await wait_for(lambda: any(m.startswith("READY=1") for m in received()), timeout=60)
        ready = next(m for m in messages if m.startswith("READY=1"))
        assert ready.startswith("READY=1\nSTATUS=serving at height "), ready
        client = await connect(port)
        client.send(version())
        await client.reply()
        await wait_for(lambda: any(m.endswith(", 1 sessions") for m in received()))
        client.transport.loseConnection()
    finally:
        await process.stop()
    assert process.exit_code == 0, process.output.decode(errors="replace")
    assert received()[-1] == "STOPPING=1\nSTATUS=stopping"


def test_the_unit_file_is_one_systemd_accepts(tmp_path):
    """`systemd-analyze verify` on contrib/systemd/electrumx.service, with its twistd
    path pointed at this one (skipped where systemd's tools are not installed)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here")
    unit = (REPOSITORY / "contrib" / "systemd" / "electrumx.service").read_text()
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    assert "/opt/txelectrumx/venv/bin/twistd" in unit
    path = tmp_path / "electrumx.service"
    path.write_text(unit.replace("/opt/txelectrumx/venv/bin/twistd", twistd))
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr
