"""A client that stops reading while notifications pour in is cut off at a bound.

The policy: when a client's socket stops draining, its session is paused and
may queue at most `max_buffered` (2 x MAX_SEND) more bytes; past that the
server drops the connection.  Other clients notice nothing.  Each test opens
the never-reading client as a plain socket with a tiny receive buffer.
"""

import base64
import os

import orjson
import pytest_twisted

from twisted.internet import reactor, task

from electrumx.config.services import Service
from electrumx.listener import Listener
from electrumx.protocol.subscriptions import HEADERS_METHOD
from tests.fixtures.regtest import wait_for
from electrumx.protocol.send_budget import PAUSED_BUDGET_SENDS
from tests.fixtures.slow_clients import never_reading_socket, shrink_send_buffer
from tests.protocol.test_transport import connect, server, version  # noqa: F401 (fixture)

PUSH_LIMIT = 32 * 1024 * 1024
"""The most a test pushes before calling the bound broken."""


def websocket_frame(text: str) -> bytes:
    """One masked text frame, as a client must send it."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if len(payload) < 126:
        header = bytes([0x81, 0x80 | len(payload)])
    else:
        header = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + mask + masked


async def websocket_handshake(sock):
    """Upgrade the plain socket; reads only the server's 101 answer, a byte at a time,
    giving the reactor (and so the server) a turn whenever nothing has come yet."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    sock.setblocking(False)
    reply = b""
    for _ in range(5000):
        if b"\r\n\r\n" in reply:
            break
        try:
            reply += sock.recv(1)
        except BlockingIOError:
            await task.deferLater(reactor, 0.002, lambda: None)
    sock.setblocking(True)
    assert reply.startswith(b"HTTP/1.1 101"), reply


async def flood_until_cut_off(srv, slow):
    """Send header notifications to every session until the slow one is gone."""
    db = srv.harness.db
    notification = [{"hex": db.header(db.height).hex(), "height": db.height}]
    while slow.session_id in srv.manager.sessions and slow.bytes_sent < PUSH_LIMIT:
        # Small bursts, so that a client that reads keeps up between them.
        for _ in range(40):
            for session in list(srv.manager.sessions.values()):
                session.send_notification(HEADERS_METHOD, notification)
        await task.deferLater(reactor, 0, lambda: None)
    return slow.bytes_sent


async def check_cut_off(srv, slow_socket, reader_client):
    await wait_for(lambda: len(srv.manager.sessions) == 2)
    slow = max(srv.manager.sessions.values(), key=lambda s: s.session_id)
    sent = await flood_until_cut_off(srv, slow)
    await wait_for(lambda: slow.session_id not in srv.manager.sessions)
    # Queued beyond what the sockets hold: at most the bound, plus one message.
    assert sent < PUSH_LIMIT
    assert slow._written_while_paused <= srv.manager.max_buffered + 1000
    # The reading client was flooded too, and still gets answers.
    reader_client.lines = type(reader_client.lines)()
    reader_client.send({"id": 99, "method": "server.ping"})
    while (reply := await reader_client.reply()).get("id") != 99:
        pass
    assert reply["result"] is None
    slow_socket.close()


@pytest_twisted.ensureDeferred
async def test_a_tcp_client_that_stops_reading_is_cut_off(server):
    srv = await server(max_send=20_000)
    reader = await connect(srv.port)
    reader.send(version())
    await reader.reply()
    slow_socket = never_reading_socket(srv.port)
    slow_socket.sendall(orjson.dumps(version()) + b"\n")
    await check_cut_off(srv, slow_socket, reader)


@pytest_twisted.ensureDeferred
async def test_a_websocket_client_that_stops_reading_is_cut_off(server):
    srv = await server(max_send=20_000, services=[Service("tcp", "127.0.0.1", 0),
                                                  Service("ws", "127.0.0.1", 0)])
    ports = {s.label: s.port.getHost().port for s in srv.manager if isinstance(s, Listener)}
    tcp_port, ws_port = ports["tcp"], ports["ws"]
    reader = await connect(tcp_port)
    reader.send(version())
    await reader.reply()
    slow_socket = never_reading_socket(ws_port)
    await websocket_handshake(slow_socket)
    slow_socket.sendall(websocket_frame(orjson.dumps(version()).decode()))
    await check_cut_off(srv, slow_socket, reader)


@pytest_twisted.ensureDeferred
async def test_a_client_not_reading_is_logged_once(server):
    """Replies still due after the cut-off (requests that slept under the soft cost limit)
    are dropped, not each logged again."""
    from tests.protocol.test_session_logging import Captured
    srv = await server(max_send=20_000, cost_soft_limit=1, request_sleep=10)
    slow_socket = never_reading_socket(srv.port)
    headers = [{"id": n, "method": "blockchain.block.headers", "params": [0, 21]}
               for n in range(2, 102)]
    await wait_for(lambda: srv.manager.sessions)
    # Replies go straight into the kernel's buffer while it has room (up to 4 MB).
    shrink_send_buffer(next(iter(srv.manager.sessions.values())))
    with Captured() as lines:
        slow_socket.sendall(b"".join(orjson.dumps(m) + b"\n" for m in [version()] + headers))
        await wait_for(lambda: srv.manager.stats.sessions_opened == 1
                       and not srv.manager.sessions)
        await task.deferLater(reactor, 0.1, lambda: None)     # any reply still due
    assert sum("client not reading; disconnecting" in line for line in lines) == 1
    slow_socket.close()


@pytest_twisted.ensureDeferred
async def test_clients_that_never_read_hold_no_more_than_the_budget_together(server):
    """Each may queue 2 x MAX_SEND, but together they stay within the server's budget:
    the longest-paused go first, and a client that reads is never cut off."""
    srv = await server(max_send=20_000)
    manager = srv.manager
    budget = PAUSED_BUDGET_SENDS * 20_000
    reader = await connect(srv.port)
    reader.send(version())
    await reader.reply()
    slow_sockets = []
    for _ in range(12):                                  # 12 x 40,000 could queue 480,000
        slow_socket = never_reading_socket(srv.port)
        slow_socket.sendall(orjson.dumps(version()) + b"\n")
        slow_sockets.append(slow_socket)
    await wait_for(lambda: len(manager.sessions) == 13)
    for session in manager.sessions.values():
        if session.session_id != min(manager.sessions):     # not the reader's
            shrink_send_buffer(session)
    db = srv.harness.db
    notification = [{"hex": db.header(db.height).hex(), "height": db.height}]
    most_queued = 0
    for _ in range(400):
        for session in list(manager.sessions.values()):
            session.send_notification(HEADERS_METHOD, notification)
        queued = sum(s._written_while_paused for s in manager.sessions.values()
                     if s._paused_writing and s.is_open)
        most_queued = max(most_queued, queued)
        await task.deferLater(reactor, 0, lambda: None)
    assert most_queued <= budget + 1000
    await wait_for(lambda: len(manager.sessions) < 13)
    reader.lines = type(reader.lines)()
    reader.send({"id": 99, "method": "server.ping"})
    while (await reader.reply()).get("id") != 99:      # the reader was flooded too
        pass
    for slow_socket in slow_sockets:
        slow_socket.close()
