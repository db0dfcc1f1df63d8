"""What hostile WebSocket frames cost a server process: memory, and time to refusal.

Starts the built-in regtest node (tiny chain) and `twistd electrumx` serving
ws:// on 127.0.0.1, a fresh server for each case (a server still busy with
the previous case would skew the next):

frame N MB
    one text frame whose header declares N MB (``--frames-mb``, default
    40,300), its payload streamed after it in 64 KB chunks;
header 2^62
    a header declaring 2^62 bytes, and nothing after it;
fragments
    one MAX_RECV-byte ``server.version`` request in 10,000 fragments.

Printed for each: the server's resident memory growth (VmRSS sampled every
10 ms, peak minus the value before the case), the time from the frame header
to the refusal (the first byte the server sends back) or to the reply, the
server's CPU seconds over the case, and how the server answered.  A case
unanswered after ``--timeout`` seconds (default 120) says so.

    .venv/bin/python bench/websocket_frames.py [--frames-mb 40,300]
"""

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from processes import ROOT, free_port, start, start_node, stop, wait_for

sys.path.insert(0, str(ROOT))

from tests.fixtures.websocket import (CLOSE, TEXT, close_code, connect, fragments,  # noqa: E402
                                      frame_header, read_frames, resident_bytes)

MAX_RECV = 1_000_000
CHUNK = b"x" * 65536
SAMPLE_SECS = 0.01


def cpu_seconds(pid) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100     # utime, stime in clock ticks


class Sampler(threading.Thread):
    """Samples a process's VmRSS until stopped; `peak` is the highest seen."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = resident_bytes(pid)
        self.running = True

    def run(self):
        while self.running:
            try:
                self.peak = max(self.peak, resident_bytes(self.pid))
            except (OSError, RuntimeError):
                return
            time.sleep(SAMPLE_SECS)


def stream(sock, header: bytes, length: int, sent: list):
    """Send `header`, then `length` payload bytes in chunks, until done or refused."""
    try:
        sock.sendall(header)
        while sent[0] < length:
            chunk = CHUNK[:length - sent[0]]
            sock.sendall(chunk)
            sent[0] += len(chunk)
    except OSError:
        pass


def run_case(pid, port, header: bytes, length: int, until: int, timeout: float):
    """Send one case on a fresh connection; what the server did about it, read up to
    its first frame with opcode `until`."""
    sock = connect(port, timeout=timeout)
    before, cpu_before = resident_bytes(pid), cpu_seconds(pid)
    sampler = Sampler(pid)
    sampler.start()
    sent = [0]
    sender = threading.Thread(target=stream, args=(sock, header, length, sent), daemon=True)
    started = time.monotonic()
    sender.start()
    try:
        sock.recv(1, socket.MSG_PEEK)        # waits for the first byte back
    except TimeoutError:
        answered, frames = None, []
    else:
        answered = time.monotonic() - started
        frames = read_frames(sock, until)
    sampler.running = False
    sampler.join()
    sock.close()
    texts = [(orjson.loads(p).get("error") or {}).get("message", "a reply")[:40]
             for opcode, p in frames if opcode == TEXT]
    return dict(growth_mb=(sampler.peak - before) / 1e6, answered=answered,
                cpu=cpu_seconds(pid) - cpu_before, sent_mb=sent[0] / 1e6,
                answer=texts, close=close_code(frames))


def fragmented_request() -> bytes:
    request = {"id": 1, "method": "server.version", "params": ["bench", "1.4"], "pad": ""}
    request["pad"] = "x" * (MAX_RECV - len(orjson.dumps(request)))
    return b"".join(fragments(orjson.dumps(request), 10_000))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames-mb", default="40,300")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    cases = [(f"frame {mb} MB", frame_header(TEXT, mb * 1_000_000), mb * 1_000_000, CLOSE)
             for mb in map(int, args.frames_mb.split(","))]
    cases.append(("header 2^62", frame_header(TEXT, 1 << 62), 0, CLOSE))
    cases.append(("fragments", fragmented_request(), 0, TEXT))
    work = Path(tempfile.mkdtemp(prefix="ws-frames-"))
    node, node_port = start_node(work, "tiny", timeout=300)
    try:
        for name, header, length, until in cases:
            port = free_port()
            shutil.rmtree(work / "db", ignore_errors=True)
            server, log = start("ours", work, node_port, MAX_RECV=str(MAX_RECV),
                                SERVICES=f"ws://127.0.0.1:{port}")
            try:
                wait_for(log, "serving ws on", server, 120)
                r = run_case(server.pid, port, header, length, until, args.timeout)
            finally:
                stop(server)
            answered = "no answer" if r["answered"] is None else f"{r['answered']:.2f} s"
            print(f"{name:>14}: RSS +{r['growth_mb']:.1f} MB, {answered}, server CPU "
                  f"{r['cpu']:.2f} s, {r['sent_mb']:.1f} MB of payload sent; answer "
                  f"{r['answer']} close {r['close']}", flush=True)
    finally:
        stop(node)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
