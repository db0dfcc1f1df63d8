"""MAX_RECV for WebSocket clients is applied at the frame headers.

Over real sockets, each client is a raw socket driven from a thread
(`tests.fixtures.websocket`) while the server runs in the test's reactor, so
the server's memory and CPU time are this process's: the client streams its
payload from one reused chunk and adds nothing to them.  The frame meter and
the guard's abort timer are also tested on their own, without sockets.
"""

import select
import socket
import ssl
import time

import orjson
import pytest
import pytest_twisted
from twisted.internet import protocol, threads
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from electrumx.config.services import Service
from electrumx.listener import Listener
from electrumx.protocol.websocket_limits import (REFUSAL_GRACE_SECS, UPGRADE_REQUEST_MAX_BYTES,
                                                 LimitedWebSocketSite, MessageMeter)
from tests.fixtures import websocket as ws
from tests.fixtures.regtest import wait_for
from tests.protocol.test_transport import server  # noqa: F401 (fixture)

MAX_RECV = 1_000_000
RSS_GROWTH_LIMIT = 5_000_000
"""The most the server's resident memory may grow while it refuses a huge frame."""

CHUNK = b"x" * 65536


async def ws_server(server, max_recv=MAX_RECV, protocol="ws", **overrides):
    srv = await server(max_recv=max_recv, services=[Service(protocol, "127.0.0.1", 0)],
                       **overrides)
    srv.port = next(s.port.getHost().port for s in srv.manager if isinstance(s, Listener))
    return srv


def request(n: int, size: int = 0) -> bytes:
    """A server.version request, padded to `size` bytes when given."""
    message = {"id": n, "method": "server.version", "params": ["test", "1.4"], "pad": ""}
    if size:
        message["pad"] = "x" * (size - len(orjson.dumps(message)))
    return orjson.dumps(message)


def replies(frames) -> list:
    return [orjson.loads(payload) for opcode, payload in frames if opcode == ws.TEXT]


def assert_refused(frames, max_recv=MAX_RECV):
    """The server said "request too long" and sent a close frame."""
    [reply] = replies(frames)
    assert f"request too long: over {max_recv:,d} bytes" in reply["error"]["message"]
    assert ws.close_code(frames) == 1009            # message too big (RFC 6455, 7.4.1)


def answered(sock) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def send_and_read(sock, data: bytes, until: int = ws.CLOSE):
    sock.sendall(data)
    return ws.read_frames(sock, until)


# ---- over real sockets -----------------------------------------------------

def stream_frame(port: int, length: int):
    """Declare a `length`-byte text frame and stream its payload until the server
    answers: (frames read back, payload bytes sent, peak growth of this process's RSS)."""
    sock = ws.connect(port)
    before = peak = ws.resident_bytes()
    sent = 0
    try:
        sock.sendall(ws.frame_header(ws.TEXT, length))
        while sent < length and not answered(sock):
            sock.sendall(CHUNK[:length - sent])
            sent += min(len(CHUNK), length - sent)
            peak = max(peak, ws.resident_bytes())
    except OSError:             # refused and closed under the sender: what is left to read
        pass
    frames = ws.read_frames(sock)
    peak = max(peak, ws.resident_bytes())
    sock.close()
    return frames, sent, peak - before


@pytest_twisted.ensureDeferred
async def test_a_40_mb_frame_is_refused_at_its_header(server):
    srv = await ws_server(server)
    frames, sent, growth = await threads.deferToThread(stream_frame, srv.port, 40_000_000)
    assert_refused(frames)
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth:,d} bytes"
    assert sent < 40_000_000
    await wait_for(lambda: not srv.manager.sessions)


@pytest_twisted.ensureDeferred
async def test_a_header_declaring_2_62_bytes_is_refused_at_once(server):
    srv = await ws_server(server)
    frames = await threads.deferToThread(
        lambda: send_and_read(ws.connect(srv.port), ws.frame_header(ws.TEXT, 1 << 62)))
    assert_refused(frames)
    await wait_for(lambda: not srv.manager.sessions)


def unfinished_message(port: int, fragment_size: int, count: int):
    """Up to `count` fragments of one message that never ends, until the server answers;
    then what it sent."""
    sock = ws.connect(port)
    piece = b"x" * fragment_size
    try:
        for n in range(count):
            if answered(sock):
                break
            sock.sendall(ws.client_frame(ws.TEXT if n == 0 else ws.CONTINUATION, piece,
                                         fin=False))
    except OSError:
        pass
    return ws.read_frames(sock)


@pytest_twisted.ensureDeferred
async def test_a_fragmented_message_is_refused_as_soon_as_it_passes_max_recv(server):
    srv = await ws_server(server)
    frames = await threads.deferToThread(unfinished_message, srv.port, 100_000, 30)
    assert_refused(frames)
    await wait_for(lambda: not srv.manager.sessions)


def boundary(port: int):
    """A MAX_RECV-byte message in 1,000 fragments with a ping among them; then, on the
    same connection, a header declaring a message one byte longer."""
    sock = ws.connect(port)
    frames = ws.fragments(request(1, MAX_RECV), 1_000)
    frames.insert(500, ws.client_frame(ws.PING, b"p"))
    served = send_and_read(sock, b"".join(frames), until=ws.TEXT)
    refused = send_and_read(sock, ws.frame_header(ws.TEXT, MAX_RECV + 1))
    return served, refused


@pytest_twisted.ensureDeferred
async def test_max_recv_bytes_are_served_and_one_more_is_refused(server):
    srv = await ws_server(server)
    served, refused = await threads.deferToThread(boundary, srv.port)
    assert served[0] == (ws.PONG, b"p")
    assert replies(served)[0]["result"][1] == "1.4"
    assert_refused(refused)


@pytest_twisted.ensureDeferred
async def test_over_tls_too(server, tmp_path):
    from tests.config.certs import self_signed
    cert, key = self_signed(tmp_path)
    srv = await ws_server(server, protocol="wss", ssl_certfile=cert, ssl_keyfile=key)

    def serve_then_refuse():
        sock = ws.connect(srv.port, tls=ssl.create_default_context(cafile=cert))
        served = send_and_read(sock, ws.client_frame(ws.TEXT, request(1)), until=ws.TEXT)
        return served, send_and_read(sock, ws.frame_header(ws.TEXT, 1 << 62))
    served, refused = await threads.deferToThread(serve_then_refuse)
    assert replies(served)[0]["result"][1] == "1.4"
    assert_refused(refused)
    await wait_for(lambda: not srv.manager.sessions)


@pytest_twisted.ensureDeferred
async def test_bytes_sent_with_the_upgrade_request_never_reach_the_websocket(server):
    """What the guard relies on (Twisted drops them): if they were passed on, they would
    reach wsproto without passing the meter."""
    srv = await ws_server(server)

    def too_early():
        sock = ws.connect(srv.port, early=ws.client_frame(ws.TEXT, request(1)))
        return send_and_read(sock, ws.client_frame(ws.TEXT, request(2)), until=ws.TEXT)
    served = await threads.deferToThread(too_early)
    assert [reply["id"] for reply in replies(served)] == [2]


LARGE_MAX_RECV = 10_000_000
"""An operator may raise MAX_RECV; at 10 MB the cost of many fragments shows plainly."""

FRAGMENTS_CPU_SECS = 3.0
"""CPU seconds allowed for a 10 MB message in 20,000 fragments: about 0.6 s when each
fragment is appended in place, over 8 s when every fragment copies the message so far."""


@pytest_twisted.ensureDeferred
async def test_a_message_in_many_fragments_costs_linear_time(server):
    srv = await ws_server(server, max_recv=LARGE_MAX_RECV)
    frames = b"".join(ws.fragments(request(1, LARGE_MAX_RECV), 20_000))
    cpu = time.process_time()
    served = await threads.deferToThread(
        lambda: send_and_read(ws.connect(srv.port, timeout=60), frames, until=ws.TEXT))
    cpu = time.process_time() - cpu
    assert replies(served)[0]["result"][1] == "1.4"
    assert cpu < FRAGMENTS_CPU_SECS, f"{cpu:.2f} s of CPU"


def post_body(port: int, length: int):
    """POST a `length`-byte body; how much of it went out before the server hung up."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = 0
    try:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        while sent < length and not answered(sock):
            sock.sendall(CHUNK)
            sent += len(CHUNK)
    except OSError:
        pass
    sock.close()
    return sent


@pytest_twisted.ensureDeferred
async def test_a_request_body_is_not_taken_before_the_upgrade(server):
    """Twisted reads a whole request body (to a temporary file) before answering it."""
    srv = await ws_server(server)
    sent = await threads.deferToThread(post_body, srv.port, 50_000_000)
    assert sent < 50_000_000


# ---- the meter and the guard, without sockets ------------------------------

def frame(opcode: int, length: int, fin: bool = True) -> bytes:
    """A frame with a zero payload (the meter never looks at payloads)."""
    return ws.frame_header(opcode, length, fin) + bytes(length)


@pytest.mark.parametrize("frames, passed", [
    ([(ws.TEXT, 10, True)], None),
    ([(ws.TEXT, 11, True)], 0),
    ([(ws.TEXT, 6, False), (ws.CONTINUATION, 4, True)], None),
    ([(ws.TEXT, 6, False), (ws.CONTINUATION, 5, True)], 12),
    ([(ws.TEXT, 6, False), (ws.PING, 100, True), (ws.CONTINUATION, 4, True)], None),
    ([(ws.TEXT, 10, True), (ws.TEXT, 10, True), (ws.TEXT, 10, True)], None),
    ([(ws.TEXT, 10, True), (ws.TEXT, 0, False), (ws.CONTINUATION, 11, True)], 22),
    ([(ws.TEXT, 0, False), (ws.CONTINUATION, 70_000, True)], 6),
    ([(ws.TEXT, 1 << 62, True)], 0),
    ([(ws.TEXT, 1 << 63, True)], 0),
])
def test_the_meter_refuses_at_the_header_that_passes_the_limit(frames, passed):
    """`passed`: where the refused header starts (None: nothing refused).  The last
    frame is sent as its header alone: it is refused there or not at all."""
    data = b"".join(frame(*f) for f in frames[:-1]) + ws.frame_header(*frames[-1])
    for chunk_size in (len(data), 1, 5):    # whole, a byte at a time, across headers
        meter = MessageMeter(10)
        total = 0
        for start in range(0, len(data), chunk_size):
            chunk = data[start:start + chunk_size]
            taken = meter.feed(chunk)
            total += taken
            if meter.refused:
                break
            assert taken == len(chunk)
        assert meter.refused == (passed is not None)
        if passed is None:
            assert total == len(data)
        elif chunk_size == len(data):
            assert total == passed
        else:       # the refused header's first bytes went on with earlier chunks
            assert passed <= total < passed + 14


class Recorder(protocol.Protocol):
    def __init__(self):
        self.received = b""

    def dataReceived(self, data):
        self.received += data


def guard_on(transport):
    clock = Clock()
    site = LimitedWebSocketSite(protocol.Factory.forProtocol(Recorder), clock)
    guard = site.buildProtocol(None)
    guard.makeConnection(transport)
    return guard, clock


def test_a_refused_client_that_does_not_read_is_aborted():
    transport = StringTransport()
    guard, clock = guard_on(transport)
    refusals = []
    guard.read_frames(10, lambda: refusals.append(transport.disconnecting))
    first = frame(ws.TEXT, 4)
    guard.dataReceived(first + ws.frame_header(ws.TEXT, 11))
    guard.dataReceived(b"more")
    assert guard.wrappedProtocol.received == first
    assert refusals == [False] and transport.disconnecting     # answered, then closed
    clock.advance(REFUSAL_GRACE_SECS - 0.1)
    assert not transport.disconnected
    clock.advance(0.1)
    assert transport.disconnected           # aborted


def test_a_refused_client_that_hangs_up_is_not_aborted():
    transport = StringTransport()
    guard, clock = guard_on(transport)
    guard.read_frames(10, lambda: None)
    guard.dataReceived(ws.frame_header(ws.TEXT, 11))
    guard.connectionLost(None)
    assert not clock.getDelayedCalls()


def test_an_upgrade_request_is_passed_on_up_to_its_bound():
    transport = StringTransport()
    guard, clock = guard_on(transport)
    guard.dataReceived(b"x" * UPGRADE_REQUEST_MAX_BYTES)
    assert not transport.disconnecting
    guard.dataReceived(b"x")
    assert transport.disconnecting
    assert len(guard.wrappedProtocol.received) == UPGRADE_REQUEST_MAX_BYTES
