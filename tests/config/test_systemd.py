"""sd_notify messages reach a real datagram socket named by $NOTIFY_SOCKET."""

import socket

from electrumx.systemd import SystemdNotifier


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
