"""What bench/attack.py watches of the server under attack, each in its own thread.

`Server` reads the process's RSS and CPU from /proc and asks the admin RPC
(`getinfo`, as `electrumx-rpc --json getinfo` does) for the session count;
`Sampler` samples those all along; `Probe` is a well-behaved session timing
server.ping every 0.5 s; `NewClients` tries a new connection every second.
"""

import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from attack_tools import Target, Unanswered, connect, ending, greet, line, read_lines, request
from load import server_usage
from processes import ROOT

sys.path.insert(0, str(ROOT))

from electrumx.admin.cli import RPCFailure, call as admin_call  # noqa: E402

PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUT_S = 5.0
"""A ping unanswered this long is lost (infinite latency); the probe connects again."""
NEW_CLIENT_INTERVAL_S = 1.0
RSS_SAMPLE_S = 0.05
SESSIONS_SAMPLE_S = 0.1
ADMIN_TIMEOUT_S = 5.0


@dataclass
class Server:
    """The server under attack: its process id, its ports, and (if ours) its process."""

    pid: int
    target: Target
    rpc_port: int
    process: object = None
    log: Path = None

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:                  # another's process: gone, or a zombie its parent has not reaped
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    def death(self) -> str:
        """How the server ended, with the end of its log if we have it."""
        text = "the server process is gone"
        if self.process is not None:
            text += f" (exit status {self.process.poll()})"
        if self.log is not None and self.log.exists():
            text += ":\n" + self.log.read_text()[-3000:]
        return text

    def rss_mb(self):
        return self._usage(1)

    def cpu_s(self):
        return self._usage(0)

    def _usage(self, index):
        """From load.server_usage: None once the process is gone (a zombie has no VmRSS)."""
        try:
            return server_usage(self.pid)[index]
        except (OSError, ValueError, KeyError):
            return None

    def info(self):
        """The admin RPC's getinfo, or None when it does not answer."""
        try:
            return admin_call("127.0.0.1", self.rpc_port, "getinfo", [], ADMIN_TIMEOUT_S)
        except RPCFailure:
            return None

    def sessions(self):
        info = self.info()
        return None if info is None else info["sessions"]


class Sampler:
    """Samples the server all along, in two threads: RSS every 50 ms, and the session and
    subscription counts every 100 ms (admin RPC)."""

    def __init__(self, server: Server):
        self.server = server
        self.rss = []               # (time, MB)
        self.counts = []            # (time, sessions, subscriptions)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=loop, daemon=True)
                        for loop in (self._sample_rss, self._sample_counts)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join()

    def _sample_rss(self):
        while not self.stopping.wait(RSS_SAMPLE_S):
            rss = self.server.rss_mb()
            if rss is not None:
                self.rss.append((time.monotonic(), rss))

    def _sample_counts(self):
        while not self.stopping.wait(SESSIONS_SAMPLE_S):
            info = self.server.info()
            if info is not None:
                self.counts.append((time.monotonic(), info["sessions"], info["subscriptions"]))

    def peak_rss(self, start: float, end: float):
        return max((mb for t, mb in self.rss if start <= t <= end), default=None)

    def most(self, start: float, end: float, column: int):
        return max((row[column] for row in self.counts if start <= row[0] <= end),
                   default=None)


class Probe:
    """A session calling server.ping every 0.5 s: (time sent, milliseconds to the answer).

    An answer missing after PROBE_TIMEOUT_S is infinite latency; the probe then
    connects again.
    """

    def __init__(self, port: int):
        self.port = port
        self.samples = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def start(self):
        self.thread.start()
        self.ready.wait(PROBE_TIMEOUT_S)

    def stop(self):
        self.stopping.set()
        self.thread.join()

    def _run(self):
        sock = None
        number = 0
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                if sock is None:
                    sock = connect(self.port)
                    greet(sock, began + PROBE_TIMEOUT_S)
                    self.ready.set()
                number += 1
                sent = time.monotonic()
                sock.sendall(line(request("server.ping", [], number)))
                _, end = read_lines(sock, sent + PROBE_TIMEOUT_S)
                if end is not None:
                    raise Unanswered(end)
                self.samples.append((sent, 1000 * (time.monotonic() - sent)))
            except (OSError, Unanswered):
                self.samples.append((began, math.inf))
                if sock is not None:
                    sock.close()
                sock = None
            self.stopping.wait(max(0.0, began + PROBE_INTERVAL_S - time.monotonic()))
        if sock is not None:
            sock.close()

    def latencies(self, start: float, end: float) -> list:
        return sorted(ms for t, ms in self.samples if start <= t <= end)


class NewClients:
    """During an attack, a new client every second: connect, server.version, close.

    Each try is (time, milliseconds, or None and why it failed).
    """

    def __init__(self, port: int):
        self.port = port
        self.tries = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join()

    def _run(self):
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                with connect(self.port) as sock:
                    greet(sock, began + PROBE_TIMEOUT_S)
                self.tries.append((began, 1000 * (time.monotonic() - began), None))
            except (OSError, Unanswered) as error:
                self.tries.append((began, None, ending(error)))
            self.stopping.wait(max(0.0, began + NEW_CLIENT_INTERVAL_S - time.monotonic()))

    def summary(self) -> dict:
        times = [ms for _, ms, _ in self.tries if ms is not None]
        failures = {}
        for _, ms, why in self.tries:
            if ms is None:
                failures[why] = failures.get(why, 0) + 1
        return {"tries": len(self.tries), "ok": len(times),
                "max_ms": max(times, default=None), "failures": failures}
