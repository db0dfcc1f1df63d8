"""What the attackers of bench/attackers.py are made of: plain sockets on loopback.

Sockets that always time out (`connect`, `read_lines`, `send_payload`),
clients that connect again whenever the server cuts them off
(`reconnecting`), crowds of non-blocking sockets held from one thread for
the slow attacks (`Crowd`), WebSocket frames and TLS ClientHellos made by
hand, and the `Tally` of what the attackers got back: replies by kind, how
their connections ended, and the extremes of some figures (bytes the server
took before it stopped reading, seconds before it cut a connection).

No call here can hang, whatever the server does: blocking sockets carry a
timeout, and slow clients are non-blocking.
"""

import base64
import errno
import os
import select
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass

import orjson

HOST = "127.0.0.1"
"""Where the server listens, and where the probe and the admin calls come from."""


class AttackerAddresses:
    """The loopback addresses attackers connect from: never the probe's.

    Real attackers are not on the server's machine: they are outside the
    loopback exemption of MAX_CLIENTS_PER_IP and outside the probe's session
    group.  Each connection takes the next place: `per_address` connections
    share an address (10, below MAX_CLIENTS_PER_IP's default 12: the best a
    botnet can do against the cap), and consecutive addresses lie in
    different /24s, so they share no group cost either.  `per_address` 0 puts
    every attacker on one address (127.1.0.1), to show the cap itself.
    """

    def __init__(self, per_address: int = 10):
        self.per_address = per_address
        self._taken = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            taken, self._taken = self._taken, self._taken + 1
        n = taken // self.per_address if self.per_address else 0
        return f"127.1.{n % 250}.{1 + n // 250 % 250}"


ATTACKERS = AttackerAddresses()
IO_TIMEOUT = 5.0
"""Seconds a blocking send or read may stall before the attacker calls it stalled."""
GRACE = 10.0
"""Seconds past an attack's length that its last reply is still waited for."""
CHUNK = 1 << 20
"""Bytes per send of a large payload: the attacker never holds more than a few of these."""
MB = 1 << 20
CONNECT_WAVE = 25
"""Connections a crowd opens at once: half the listener's backlog (Twisted's default 50)."""
WAVE_PAUSE = 0.02
"""Seconds between two waves, for the server to accept the last one."""


@dataclass
class Target:
    """The server under attack: loopback ports and what the chain offers."""

    tcp: int
    ssl: int
    ws: int
    height: int = 0


class Tally:
    """What the attackers got back: outcomes counted, and the extremes of some figures.

    Attacker threads share one tally, hence the lock.
    """

    def __init__(self):
        self.counts = Counter()
        self.figures = {}
        self._lock = threading.Lock()

    def add(self, what: str, count: int = 1):
        with self._lock:
            self.counts[what] += count

    def high(self, what: str, value: float):
        """Keep the highest `value` of `what`."""
        with self._lock:
            self.figures[what] = max(value, self.figures.get(what, value))

    def low(self, what: str, value: float):
        """Keep the lowest `value` of `what`."""
        with self._lock:
            self.figures[what] = min(value, self.figures.get(what, value))

    def text(self) -> str:
        counted = [f"{n:,d}× {what}" for what, n in self.counts.most_common()]
        figures = [f"{what} {value:,.1f}" for what, value in self.figures.items()]
        return "; ".join(counted + figures) or "nothing"

    def as_json(self) -> dict:
        return {"counts": dict(self.counts), "figures": self.figures}


# ---- messages ------------------------------------------------------------------

def request(method: str, params, request_id=1) -> dict:
    return {"id": request_id, "method": method, "params": params}


def line(payload) -> bytes:
    return orjson.dumps(payload) + b"\n"


VERSION = request("server.version", ["attack.py", "1.4"], 0)


def reply_kinds(message) -> Counter:
    """What one decoded message from the server holds: results and errors by message."""
    items = message if isinstance(message, list) else [message]
    kinds = Counter()
    for item in items:
        if not isinstance(item, dict):
            kinds["non-JSON-RPC reply"] += 1
        elif item.get("error"):
            error = item["error"]
            text = error.get("message", "") if isinstance(error, dict) else str(error)
            kinds[f"error {text[:80]!r}"] += 1
        elif "method" in item:
            kinds[f"notification {item['method']}"] += 1
        else:
            kinds["result"] += 1
    return kinds


def count_replies(tally: Tally, data: bytes):
    """Tally every whole line of `data` (the server's replies); a batch counts its items.

    A last line without its newline is what was left unread, and is ignored.
    """
    for text in data[:data.rfind(b"\n") + 1].split(b"\n"):
        if not text.strip():
            continue
        try:
            kinds = reply_kinds(orjson.loads(text))
        except orjson.JSONDecodeError:
            kinds = Counter({"unparsable line": 1})
        for what, count in kinds.items():
            tally.add(what, count)


# ---- sockets ---------------------------------------------------------------------

class Unanswered(Exception):
    """The server did not let an attacker start (no version answer, no WebSocket upgrade)."""


def connect(port: int, rcvbuf: int = 0, source: str = None) -> socket.socket:
    """A blocking socket connected to the server from `source` (default HOST), with
    IO_TIMEOUT."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(IO_TIMEOUT)
    try:
        if source is not None:
            sock.bind((source, 0))
        sock.connect((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def reset(sock: socket.socket):
    """Close with a TCP reset (SO_LINGER 0), as a client that vanishes does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def ending(error: BaseException) -> str:
    """How a connection ended, from the exception that ended it."""
    if isinstance(error, Unanswered):
        return str(error)
    if isinstance(error, socket.timeout):
        return f"stalled {IO_TIMEOUT:g} s (the server stopped reading or answering)"
    if isinstance(error, (ConnectionResetError, BrokenPipeError)):
        return "reset by the server"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"{type(error).__name__}"


def read_lines(sock: socket.socket, deadline: float, want: int = 1,
               limit: int = 64 * MB) -> tuple:
    """Read until `want` whole lines came, the server closed, or `deadline`: (data, end).

    `end` is None when the lines came, else how the connection ended.  Replies
    past `limit` bytes are read and thrown away, so the attacker stays small.
    """
    data = bytearray()
    while data.count(b"\n") < want:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(data), "no reply in time"
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(CHUNK)
        except socket.timeout:
            return bytes(data), "no reply in time"
        except OSError as error:
            return bytes(data), ending(error)
        if not chunk:
            return bytes(data), "closed by the server"
        if len(data) < limit:
            data += chunk
    return bytes(data), None


def greet(sock: socket.socket, deadline: float):
    """Send server.version and wait for its answer; raises Unanswered if none."""
    sock.sendall(line(VERSION))
    _, end = read_lines(sock, deadline)
    if end is not None:
        raise Unanswered(f"no server.version answer: {end}")


def send_payload(sock: socket.socket, head: bytes, block: bytes, size: int,
                 deadline: float) -> tuple:
    """Send `head`, then `block` repeatedly, up to `size` bytes in all: (bytes sent, end).

    `end` is None when everything went, else why the sending stopped.
    """
    sent = 0
    sock.settimeout(IO_TIMEOUT)
    try:
        sock.sendall(head)
        sent = len(head)
        while sent < size:
            if time.monotonic() > deadline:
                return sent, "attack time over"
            piece = block[:size - sent]
            sock.sendall(piece)
            sent += len(piece)
    except OSError as error:
        return sent, ending(error)
    return sent, None


def tally_ending(tally: Tally, end):
    if end is not None:
        tally.add(end)


def in_threads(count: int, work, *args):
    """Run `work(index, *args)` in `count` threads and wait for all (each is bounded)."""
    threads = [threading.Thread(target=work, args=(i, *args), daemon=True)
               for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def reconnecting(port: int, tally: Tally, seconds: float, session):
    """Run `session(sock, deadline)` on fresh connections until `seconds` are over.

    Each connection greets the server first; `session` returns how its
    connection ended, which is tallied, and the attacker connects again: from
    loopback, a new connection starts with a clean cost, as a client with many
    addresses would.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with connect(port, source=ATTACKERS.next()) as sock:
                greet(sock, deadline + GRACE)
                end = session(sock, deadline)
        except (OSError, Unanswered) as error:
            end = ending(error)
        tally_ending(tally, end)
        if end == "connection refused":
            time.sleep(0.2)


class Crowd:
    """Many non-blocking sockets held open from one thread: idle, slow or stalled clients.

    It connects them, lets the caller trickle bytes into them, and notices which
    ones the server closes, and when (in seconds from the crowd's start; closes
    during the connecting are seen once it is over).
    """

    def __init__(self, port: int, count: int, connect_seconds: float):
        self.started = time.monotonic()
        self.sockets = []
        self.closed_at = {}
        self.never_connected = self._connect(port, count, self.started + connect_seconds)
        self.connected = len(self.sockets)

    def _connect(self, port: int, count: int, deadline: float) -> int:
        """Connect `count` sockets, CONNECT_WAVE at a time; how many did not connect.

        All at once, they would overflow the listener's SYN queue: the kernel
        then answers with SYN cookies, and a connection whose last ACK finds the
        accept queue full is dropped by the server while the client believes it
        is connected.  In waves, each connection is one the server sees.
        """
        poller = select.poll()
        pending = {}
        to_start = count
        next_wave = time.monotonic()
        while (to_start or pending) and time.monotonic() < deadline:
            if to_start and time.monotonic() >= next_wave:
                for _ in range(min(CONNECT_WAVE, to_start)):
                    sock = socket.socket()
                    sock.setblocking(False)
                    sock.bind((ATTACKERS.next(), 0))
                    if sock.connect_ex((HOST, port)) not in (0, errno.EINPROGRESS):
                        sock.close()
                        continue
                    pending[sock.fileno()] = sock
                    poller.register(sock, select.POLLOUT)
                to_start -= min(CONNECT_WAVE, to_start)
                next_wave = time.monotonic() + WAVE_PAUSE
            for fd, _ in poller.poll(10):
                poller.unregister(fd)
                sock = pending.pop(fd)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    sock.close()
                else:
                    self.sockets.append(sock)
        for sock in pending.values():
            sock.close()
        return count - len(self.sockets)

    @property
    def open(self):
        return [s for s in self.sockets if s not in self.closed_at]

    def send_each(self, data: bytes, sockets=None):
        """Send `data` on every open socket (or those of `sockets`), non-blocking; a
        failure to send means the server closed it."""
        for sock in self.sockets if sockets is None else sockets:
            if sock in self.closed_at:
                continue
            try:
                sock.send(data)
            except BlockingIOError:
                pass
            except OSError:
                self.closed_at[sock] = time.monotonic() - self.started

    def notice_closed(self):
        """Mark the sockets the server closed or reset (readable with nothing, or an error)."""
        poller = select.poll()
        by_fd = {s.fileno(): s for s in self.open}
        for fd in by_fd:
            poller.register(fd, select.POLLIN | select.POLLRDHUP)
        for fd, events in poller.poll(0):
            sock = by_fd[fd]
            if events & (select.POLLERR | select.POLLHUP | select.POLLRDHUP):
                self.closed_at[sock] = time.monotonic() - self.started
                continue
            try:
                if not sock.recv(65536, socket.MSG_DONTWAIT):
                    self.closed_at[sock] = time.monotonic() - self.started
            except BlockingIOError:
                pass
            except OSError:
                self.closed_at[sock] = time.monotonic() - self.started

    def hold(self, seconds: float):
        """Keep the crowd until `seconds` after its start, noticing what the server closes."""
        end = self.started + seconds
        while time.monotonic() < end:
            self.notice_closed()
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        self.notice_closed()

    def report(self, tally: Tally, label: str):
        tally.add(f"{label}: connected", self.connected)
        if self.never_connected:
            tally.add(f"{label}: never connected", self.never_connected)
        if self.closed_at:
            tally.add(f"{label}: closed by the server", len(self.closed_at))
            tally.low(f"{label}: first seen closed at s", min(self.closed_at.values()))
            tally.high(f"{label}: last seen closed at s", max(self.closed_at.values()))
        still = len(self.open)
        if still:
            tally.add(f"{label}: still open at the end", still)

    def close(self):
        for sock in self.sockets:
            sock.close()


def client_hello() -> bytes:
    """The first flight of a TLS client (its ClientHello), made without a socket."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


# ---- WebSocket by hand -------------------------------------------------------

def upgrade_request() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def ws_connect(port: int, deadline: float) -> socket.socket:
    """A socket upgraded to WebSocket; raises Unanswered if the server refuses."""
    sock = connect(port, source=ATTACKERS.next())
    sock.sendall(upgrade_request())
    answer = b""
    while b"\r\n\r\n" not in answer:
        sock.settimeout(max(0.1, min(IO_TIMEOUT, deadline - time.monotonic())))
        chunk = sock.recv(4096)
        if not chunk:
            sock.close()
            raise Unanswered("closed during the WebSocket upgrade")
        answer += chunk
    if not answer.startswith(b"HTTP/1.1 101"):
        sock.close()
        raise Unanswered(f"upgrade refused: {answer.splitlines()[0]!r}")
    return sock


def masked(data: bytes, key: bytes, offset: int = 0) -> bytes:
    """`data` masked with `key` as a client must, starting at payload `offset`."""
    turn = offset % 4
    keys = (key[turn:] + key[:turn]) * (len(data) // 4 + 1)
    value = int.from_bytes(data, "big") ^ int.from_bytes(keys[:len(data)], "big")
    return value.to_bytes(len(data), "big")


def frame_header(length: int, key: bytes, opcode: int = 0x1) -> bytes:
    """The header of one final, masked frame declaring `length` payload bytes."""
    if length < 126:
        sizes = bytes([0x80 | length])
    elif length < 1 << 16:
        sizes = bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        sizes = bytes([0x80 | 127]) + length.to_bytes(8, "big")
    return bytes([0x80 | opcode]) + sizes + key


def ws_message(text: bytes) -> bytes:
    key = os.urandom(4)
    return frame_header(len(text), key) + masked(text, key)


def read_frames(sock: socket.socket, deadline: float, tally: Tally, want: int = 1):
    """Read the server's frames until `want` text frames, a close, EOF or `deadline`.

    Text frames are tallied as replies; a close frame by its status code.
    """
    data = bytearray()
    texts = 0
    while True:
        parsed = _frame(data)
        if parsed is not None:
            opcode, payload, used = parsed
            del data[:used]
            if opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                tally.add(f"close frame {code}")
                return
            if opcode == 0x1:
                texts += 1
                count_replies(tally, payload + b"\n")
                if texts == want:
                    return
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            tally.add("no reply in time")
            return
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(CHUNK)
        except socket.timeout:
            tally.add("no reply in time")
            return
        except OSError as error:
            tally.add(ending(error))
            return
        if not chunk:
            tally.add("closed by the server")
            return
        data += chunk


def _frame(data: bytearray):
    """(opcode, payload, bytes used) of the first whole unmasked frame in `data`, or None."""
    if len(data) < 2:
        return None
    length, at = data[1] & 0x7F, 2
    if length == 126:
        if len(data) < 4:
            return None
        length, at = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        if len(data) < 10:
            return None
        length, at = int.from_bytes(data[2:10], "big"), 10
    if len(data) < at + length:
        return None
    return data[0] & 0x0F, bytes(data[at:at + length]), at + length
