"""The attacks of bench/attack.py, each a bounded function of plain sockets on loopback.

Every attack takes the `Target` (the server's ports and chain height) and a
`Tally`, runs for at most its own few seconds (or bytes), closes every
socket it opened and returns.  Nothing here measures the server; attack.py
does, and prints each attack's docstring as what the attackers did.
"""

import os
import select
import socket
import ssl
import threading
import time

import orjson

from attack_tools import (ATTACKERS, CHUNK, GRACE, MB, VERSION, Crowd, Tally, Target,
                          Unanswered, client_hello, connect, count_replies, ending, frame_header,
                          greet, in_threads, line, masked, read_frames, read_lines,
                          reconnecting, request, reset, send_payload, tally_ending,
                          upgrade_request, ws_connect, ws_message)


def oversized_line(target: Target, tally: Tally):
    """3 clients send 20 MB request lines with no newline, as fast as they can, for 10 s
    (connecting again whenever the server cuts one off)."""
    head = b'{"id":2,"method":"server.ping","params":["'
    block = b"a" * CHUNK

    def session(sock, deadline):
        sent, end = send_payload(sock, head, block, 20 * MB, deadline)
        tally.high("MB sent before the server stopped taking them", sent / MB)
        tally_ending(tally, end)
        data, end = read_lines(sock, time.monotonic() + 3, want=2)
        count_replies(tally, data)
        return end

    in_threads(3, lambda _i: reconnecting(target.tcp, tally, 10, session))


NESTED_LINES = (
    b"[" * 999_000,                                                   # too deep to parse
    b'{"a":' * 199_000,
    b"[" + b",".join([b"[" * 512 + b"]" * 512] * 950) + b"]",        # a batch of nests
    b'{"id":1,"method":"server.ping","params":['                    # deeply nested params
    + b",".join([b"[" * 500 + b"]" * 500] * 990) + b"]}",
)
"""Lines just under the default MAX_RECV (1,000,000 bytes), nested as deep as they go."""


def _exchange(sock, message: bytes, deadline: float, tally: Tally):
    """Send one message and count its answer: how the connection ended, or None."""
    sock.sendall(message)
    data, end = read_lines(sock, deadline + GRACE)
    count_replies(tally, data)
    return end


def nested_lines(target: Target, tally: Tally):
    """4 clients send ~1 MB deeply nested lines, one after another, for 10 s."""
    def session(sock, deadline):
        index = 0
        while time.monotonic() < deadline:
            end = _exchange(sock, NESTED_LINES[index % len(NESTED_LINES)] + b"\n", deadline,
                            tally)
            index += 1
            if end is not None:
                return end
        return None

    in_threads(4, lambda _i: reconnecting(target.tcp, tally, 10, session))


def request_flood(target: Target, tally: Tally):
    """20 clients pipeline block.header requests 100 at a time as fast as answered, 15 s."""
    def session(sock, deadline):
        burst = b"".join(line(request("blockchain.block.header", [n % (target.height + 1)], n))
                         for n in range(100))
        while time.monotonic() < deadline:
            sock.sendall(burst)
            data, end = read_lines(sock, deadline + GRACE, want=100)
            count_replies(tally, data)
            if end is not None:
                return end
        return None

    in_threads(20, lambda _i: reconnecting(target.tcp, tally, 15, session))


def batch_10k(target: Target, tally: Tally):
    """4 clients send batches of 10,000 block.header requests, one after another, 15 s."""
    batch = line([request("blockchain.block.header", [n % (target.height + 1)], n)
                  for n in range(10_000)])
    _batches_one_after_another(target, tally, batch)


def _batches_one_after_another(target: Target, tally: Tally, batch: bytes):
    """4 clients send `batch`, read the answer, and again, for 15 s."""
    def session(sock, deadline):
        while time.monotonic() < deadline:
            end = _exchange(sock, batch, deadline, tally)
            if end is not None:
                return end
        return None

    in_threads(4, lambda _i: reconnecting(target.tcp, tally, 15, session))


def headers_batch_15k(target: Target, tally: Tally):
    """1 client sends 15,000 blockchain.block.headers [0, 2016] in one ~1 MB line."""
    item = orjson.dumps({"id": 1, "method": "blockchain.block.headers", "params": [0, 2016]})
    batch = b"[" + b",".join([item] * 15_000) + b"]\n"
    tally.high("MB in the line", len(batch) / MB)
    deadline = time.monotonic() + 25
    try:
        with connect(target.tcp, source=ATTACKERS.next()) as sock:
            greet(sock, deadline)
            sock.sendall(batch)
            data, end = read_lines(sock, deadline)
            tally.high("MB of reply", len(data) / MB)
            count_replies(tally, data)
            tally_ending(tally, end)
    except (OSError, Unanswered) as error:
        tally.add(ending(error))


def headers_batches_1k(target: Target, tally: Tally):
    """4 clients send batches of 1,000 blockchain.block.headers [0, 2016] (the most a
    batch may hold), one after another, for 15 s."""
    item = orjson.dumps({"id": 1, "method": "blockchain.block.headers", "params": [0, 2016]})
    _batches_one_after_another(target, tally, b"[" + b",".join([item] * 1_000) + b"]\n")


def version_batch(target: Target, tally: Tally):
    """20 connections, 4 at a time, each send a batch of 3,000 server.version "9.9" as their
    first line, read the first line of the answer (3 s at most) and close."""
    batch = line([request("server.version", ["attack.py", "9.9"], n) for n in range(3_000)])

    def client(_index):
        for _ in range(5):
            try:
                with connect(target.tcp, source=ATTACKERS.next()) as sock:
                    sock.sendall(batch)
                    data, end = read_lines(sock, time.monotonic() + 3)
                    count_replies(tally, data)
                    tally_ending(tally, end)
            except OSError as error:
                tally.add(ending(error))

    in_threads(4, client)


def never_reading(target: Target, tally: Tally):
    """20 clients with a 2 KB receive buffer pipeline block.headers requests for 15 s and
    never read a byte of the replies."""
    burst = b"".join(line(request("blockchain.block.headers", [0, 2016], n))
                     for n in range(1000))
    limit = 20 * MB

    def client(_index):
        started = time.monotonic()
        deadline = started + 15
        try:
            sock = connect(target.tcp, rcvbuf=2048, source=ATTACKERS.next())
        except OSError as error:
            tally.add(ending(error))
            return
        with sock:
            sock.sendall(line(VERSION))
            sock.setblocking(False)
            sent = 0
            end = None
            while time.monotonic() < deadline and sent < limit:
                try:
                    sent += sock.send(burst)
                except BlockingIOError:
                    time.sleep(0.05)
                except OSError as error:
                    end = f"{ending(error)} (cut off)"
                    tally.high("s before cut off", time.monotonic() - started)
                    break
            tally.high("MB of requests the server took", sent / MB)
            if end is None:
                end = ("cut off by the server" if _hung_up(sock)
                       else "still connected at the end")
            tally.add(end)

    in_threads(20, client)


def _hung_up(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)
    return any(events & (select.POLLERR | select.POLLHUP | select.POLLRDHUP)
               for _, events in poller.poll(0))


def subscription_flood(target: Target, tally: Tally):
    """10 clients subscribe to random script hashes, 1,000 per batch, for 20 s
    (at most 300,000 in all)."""
    budget = [300_000]
    lock = threading.Lock()

    def take(count):
        with lock:
            granted = min(count, budget[0])
            budget[0] -= granted
            return granted

    def session(sock, deadline):
        while time.monotonic() < deadline:
            count = take(1000)
            if not count:
                return "budget of 300,000 spent"
            batch = line([request("blockchain.scripthash.subscribe", [os.urandom(32).hex()], n)
                          for n in range(count)])
            end = _exchange(sock, batch, deadline, tally)
            if end is not None:
                return end
        return None

    in_threads(10, lambda _i: reconnecting(target.tcp, tally, 20, session))


def stalled_tls(target: Target, tally: Tally):
    """500 connections to the TLS port hold 15 s: half send nothing, half half a ClientHello."""
    hello = client_hello()
    crowd = Crowd(target.ssl, 500, connect_seconds=5)
    crowd.send_each(hello[:len(hello) // 2], crowd.sockets[::2])
    crowd.hold(15)
    crowd.report(tally, "tls")
    crowd.close()


def slowloris(target: Target, tally: Tally):
    """1,000 TCP clients send a request line and 200 WebSocket clients their upgrade
    headers, each at 1 byte a second, for 20 s."""
    tcp_text = orjson.dumps(request("server.version", ["slowloris" + "a" * 100, "1.4"]))
    ws_text = upgrade_request()[:-2]              # never the blank line ending the headers
    ws = Crowd(target.ws, 200, connect_seconds=5)     # first: the tcp crowd fills the slots
    tcp = Crowd(target.tcp, 1_000, connect_seconds=5)
    started = time.monotonic()
    for second in range(20):
        tcp.send_each(tcp_text[second:second + 1])
        ws.send_each(ws_text[second:second + 1])
        tcp.notice_closed()
        ws.notice_closed()
        time.sleep(max(0.0, started + second + 1 - time.monotonic()))
    tcp.report(tally, "tcp")
    ws.report(tally, "ws")
    tcp.close()
    ws.close()


def idle_2000(target: Target, tally: Tally):
    """2,000 TCP connections that send nothing, held 15 s."""
    crowd = Crowd(target.tcp, 2_000, connect_seconds=8)
    crowd.hold(15)
    crowd.report(tally, "tcp")
    crowd.close()


def churn(target: Target, tally: Tally):
    """4 clients connect and reset for 15 s, at different points of TCP, TLS and WebSocket
    sessions (a reset at once, mid-request, after a whole request, after a TLS handshake)."""
    hello = client_hello()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE

    def sending(data):
        def act(sock):
            sock.sendall(data)
            return sock
        return act

    variants = (
        ("tcp: reset at once", target.tcp, sending(b"")),
        ("tcp: reset mid-request", target.tcp, sending(line(VERSION)[:20])),
        ("tcp: reset before the reply", target.tcp, sending(line(VERSION))),
        ("tls: reset at once", target.ssl, sending(b"")),
        ("tls: reset mid-ClientHello", target.ssl, sending(hello[:len(hello) // 2])),
        ("tls: reset after the handshake", target.ssl,
         lambda sock: context.wrap_socket(sock, server_hostname="localhost")),
        ("ws: reset mid-upgrade", target.ws, sending(upgrade_request()[:40])),
        ("ws: reset after the upgrade request", target.ws, sending(upgrade_request())),
    )

    def client(index):
        deadline = time.monotonic() + 15
        turn = index
        while time.monotonic() < deadline:
            label, port, act = variants[turn % len(variants)]
            turn += 1
            try:
                sock = connect(port, source=ATTACKERS.next())
            except OSError as error:
                tally.add(f"{label}: {ending(error)}")
                time.sleep(0.05)              # the server is gone or full: do not spin
                continue
            try:
                sock = act(sock)
                tally.add(label)
            except OSError as error:
                tally.add(f"{label}: {ending(error)}")
            reset(sock)

    in_threads(4, client)


def ws_frame(size: int, declared: int = None, seconds: float = 20):
    """An attacker sending one text frame of `size` bytes (declaring `declared` if given)."""
    def attack(target: Target, tally: Tally):
        deadline = time.monotonic() + seconds
        key = os.urandom(4)
        head = b'{"id":2,"method":"server.ping","params":["'
        head += b"a" * (-len(head) % 4)         # the filler starts on a mask boundary
        block = masked(b"a" * CHUNK, key)
        try:
            with ws_connect(target.ws, deadline) as sock:
                sock.sendall(ws_message(orjson.dumps(VERSION)))
                read_frames(sock, deadline, tally)
                header = frame_header(declared or size, key)
                sent, end = send_payload(sock, header + masked(head, key), block,
                                         len(header) + size - 3, deadline)
                if end is None and declared is None:
                    tail = masked(b'"]}', key, size - 3)
                    sock.sendall(tail)
                    sent += len(tail)
                tally.high("MB sent", sent / MB)
                tally_ending(tally, end)
                read_frames(sock, time.monotonic() + GRACE, tally, want=2)
        except (OSError, Unanswered) as error:
            tally.add(ending(error))

    if declared is None:
        attack.__doc__ = f"1 WebSocket client sends one {size // MB} MB text frame."
    else:
        attack.__doc__ = (f"1 WebSocket client sends a text frame header declaring "
                          f"2^{declared.bit_length() - 1} bytes, then up to {size // MB} MB "
                          f"of it in {seconds:g} s.")
    return attack
