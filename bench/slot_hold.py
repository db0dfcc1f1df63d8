"""How many connection slots slow clients from one address hold, and for how long.

Starts the regtest node and our server (tcp, ssl, ws and the admin rpc on
127.0.0.1) with the default settings but one: loopback is taken out of
SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS, so that 127.0.0.2 to 127.0.0.5 stand
for four remote attackers.  Each opens --connections connections of one kind
at once and never reconnects:

idle         TCP, sends nothing
slowloris    TCP, a request line at one byte a second, never finished
stalled-tls  the ssl port, sends nothing (no ClientHello)
stalled-ws   the ws port, an HTTP upgrade request at one byte a second

The script then watches, for --seconds at most, when the server closes each
connection.  One closed within REFUSED_SECS of connecting was refused at
accept; the others were held, and their hold times are printed (min, median,
max; "open" if the server had not closed them when the window ended), with
the most sessions the admin RPC reported meanwhile.

    .venv/bin/python bench/slot_hold.py --connections 50 --seconds 700
"""

import argparse
import errno
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.processes import READY, free_port, start_node, start_server, stop, wait_for  # noqa: E402
from electrumx.admin.cli import RPCFailure, call  # noqa: E402
from tests.config.certs import self_signed  # noqa: E402

TRICKLE_SECS = 1.0
"""A slow client's pace: one byte a second, the classic slowloris rate."""

REFUSED_SECS = 5.0
"""A connection closed this soon after it was made was refused at accept: every
timeout the server has is longer, and opening all the connections takes a few
seconds before the first look at them."""

KINDS = {
    # kind: (port, source address, bytes trickled or None)
    "idle": ("tcp", "127.0.0.2", None),
    "slowloris": ("tcp", "127.0.0.3", b'{"id": 1, "method": "server.version", "params": ["'
                  + b"x" * 100_000),
    "stalled-tls": ("ssl", "127.0.0.4", None),
    "stalled-ws": ("ws", "127.0.0.5", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
                   + b"a" * 100_000),
}


class SlowConnection:
    """One attacking socket: when it was made, what it still has to trickle, when it closed."""

    def __init__(self, port, source, trickle):
        self.sock = socket.socket()
        self.sock.bind((source, 0))
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.opened = time.monotonic()
        self.closed = None
        self.trickle = trickle or b""

    def poll(self, now):
        """Notice the server closing us."""
        if self.closed is not None:
            return
        try:
            while self.sock.recv(65536):
                pass                    # an error line before the close, say
            self._close(now)
        except BlockingIOError:
            pass
        except OSError:
            self._close(now)

    def send_one_byte(self, now):
        if self.closed is not None or not self.trickle:
            return
        try:
            self.sock.send(self.trickle[:1])
            self.trickle = self.trickle[1:]
        except BlockingIOError:
            pass
        except OSError as error:
            if error.errno in (errno.EPIPE, errno.ECONNRESET):
                self._close(now)

    def _close(self, now):
        self.closed = now
        self.sock.close()


def summary(kind, connections, window_end):
    refused = [c for c in connections if c.closed is not None
               and c.closed - c.opened < REFUSED_SECS]
    held = [c for c in connections if c not in refused]
    times = sorted((c.closed or window_end) - c.opened for c in held)
    still_open = sum(1 for c in held if c.closed is None)
    if not times:
        return f"{kind:12} {len(held):>5} {len(refused):>8}"
    return (f"{kind:12} {len(held):>5} {len(refused):>8} {times[0]:>9.1f} "
            f"{statistics.median(times):>9.1f} {times[-1]:>9.1f} {still_open:>6}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50, help="connections of each kind")
    parser.add_argument("--seconds", type=float, default=700.0, help="longest watch")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slot-hold-"))
    cert, key = self_signed(work / "tls")
    ports = {name: free_port() for name in ("tcp", "ssl", "ws", "rpc")}
    node, node_port = start_node(work, "tiny", 300)
    server = None
    try:
        services = ",".join(f"{name}://127.0.0.1:{port}" for name, port in ports.items())
        server, log = start_server(work, node_port, SERVICES=services, SSL_CERTFILE=cert,
                                   SSL_KEYFILE=key, SUBNETS_TO_EXCLUDE_FROM_PER_IP_LIMITS="")
        wait_for(log, READY["ours"], server, 300)
        time.sleep(1.0)                 # every listener up, not only the first
        started = time.monotonic()
        attacks = {kind: [SlowConnection(ports[port], source, trickle)
                          for _ in range(args.connections)]
                   for kind, (port, source, trickle) in KINDS.items()}
        everyone = [c for connections in attacks.values() for c in connections]
        most_sessions, next_byte, next_info = 0, started, started
        while True:
            now = time.monotonic()
            for connection in everyone:
                connection.poll(now)
            if now >= next_byte:
                for connection in everyone:
                    connection.send_one_byte(now)
                next_byte += TRICKLE_SECS
            if now >= next_info:
                try:
                    info = call("127.0.0.1", ports["rpc"], "getinfo", [], 10)
                    most_sessions = max(most_sessions, info["sessions"])
                except RPCFailure:
                    pass
                next_info += 5.0
            if all(c.closed is not None for c in everyone) or now - started > args.seconds:
                break
            time.sleep(0.1)
        window_end = time.monotonic()
        print(f"{args.connections} connections of each kind, watched for at most "
              f"{args.seconds:g} s ({window_end - started:.0f} s)")
        print(f"{'kind':12} {'held':>5} {'refused':>8} {'min s':>9} {'median s':>9} "
              f"{'max s':>9} {'open':>6}")
        for kind, connections in attacks.items():
            print(summary(kind, connections, window_end))
        print(f"most sessions at once: {most_sessions}")
    finally:
        if server is not None:
            stop(server)
        stop(node)


if __name__ == "__main__":
    main()
