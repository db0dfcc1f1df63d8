"""A session the server closes always ends, over TCP, TLS and WebSocket, however its
client behaves: it leaves the manager and releases its subscriptions.

Twisted finishes `loseConnection` only once no producer is registered, and a
session is its transport's producer; a session still registered when it was
closed stayed open for good (CLOSE-WAIT once the client left).  A client that
stops reading is here a plain socket with a tiny receive buffer, left unread.
"""

import hashlib
import ssl

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, endpoints, reactor, task
from wsproto.utilities import LocalProtocolError

from electrumx.config.services import Service
from electrumx.protocol import session as session_module
from electrumx.protocol import session_lifecycle
from electrumx.protocol.session_manager import SessionManager
from tests.fixtures.regtest import wait_for, within
from tests.fixtures.slow_clients import never_reading_socket, shrink_send_buffer
from tests.protocol.test_slow_readers import websocket_frame, websocket_handshake
from tests.protocol.test_transport import (LineClient, WebSocketClient, server,  # noqa: F401
                                           version)

KINDS = ("tcp", "ssl", "ws")
SUBSCRIBED = 20
"""Script subscriptions each stuck client takes, to see them released."""
ENDS_WITHIN = 5.0
"""Seconds a closed session may take to leave the manager in these tests."""


async def serve(server, tmp_path, kind, **overrides):
    """A server with one listener of `kind` (TLS with a fresh self-signed certificate)."""
    if kind == "ssl":
        from tests.config.certs import self_signed
        cert, key = self_signed(tmp_path)
        overrides.update(ssl_certfile=cert, ssl_keyfile=key)
    return await server(services=[Service(kind, "127.0.0.1", 0)], max_recv=1_000_000,
                        **overrides)


def scripthashes(count):
    return [hashlib.sha256(b"close %d" % n).digest().hex() for n in range(count)]


def subscriptions_of_a_stuck_client():
    return [version()] + [
        {"id": n, "method": "blockchain.scripthash.subscribe", "params": [sh]}
        for n, sh in enumerate(scripthashes(SUBSCRIBED), 10)]


def a_batch_filling_the_pipe():
    """About 850 KB of replies in one message."""
    return [[{"id": n, "method": "blockchain.block.headers", "params": [0, 21]}
             for n in range(100, 350)]]


# ---- clients that read ------------------------------------------------------

class ReadingClient:
    """A client over `kind` that reads: send(message), reply(), close(), and `closed`."""

    @classmethod
    async def connect(cls, kind, port, cert=None):
        client = cls()
        if kind == "ws":
            from twisted.web.websocket import WebSocketClientEndpoint
            client.ws = WebSocketClient()
            client.closed = defer.Deferred()
            client.ws.connectionLost = lambda reason: client.closed.callback(None)

            class Factory:
                def buildProtocol(self, url):
                    return client.ws
            endpoint = WebSocketClientEndpoint.new(reactor, f"ws://127.0.0.1:{port}/")
            await defer.ensureDeferred(endpoint.connect(Factory()))
            return client
        client.line = LineClient()
        client.closed = client.line.closed
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        if kind == "ssl":
            from twisted.internet import ssl as tls
            options = tls.optionsForClientTLS(
                "localhost", tls.Certificate.loadPEM(open(cert, "rb").read()))
            endpoint = endpoints.wrapClientTLS(options, endpoint)
        await endpoints.connectProtocol(endpoint, client.line)
        return client

    def send(self, message):
        if hasattr(self, "ws"):
            self.ws.transport.sendTextMessage(orjson.dumps(message).decode())
        else:
            self.line.send(message)

    def reply(self):
        return within(self.ws.messages.get() if hasattr(self, "ws") else
                      self.line.lines.get(), 10)

    def close(self):
        try:
            (self.ws if hasattr(self, "ws") else self.line).transport.loseConnection()
        except LocalProtocolError:     # the server's WebSocket close frame came first
            pass


# ---- clients that stop reading ----------------------------------------------

async def stuck_client(kind, port):
    """A socket over `kind` that will never read (after the WebSocket handshake)."""
    sock = never_reading_socket(port)
    if kind == "ws":
        await websocket_handshake(sock)
    elif kind == "ssl":
        sock = await tls_handshake(sock)
    return sock


async def send_messages(kind, sock, messages):
    if kind == "ws":
        data = b"".join(websocket_frame(orjson.dumps(m).decode()) for m in messages)
    else:
        data = b"".join(orjson.dumps(message) + b"\n" for message in messages)
    await send_without_blocking(sock, data)


async def tls_handshake(sock):
    """The client side of a TLS handshake, without blocking the reactor serving the other."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    tls = context.wrap_socket(sock, do_handshake_on_connect=False)
    tls.setblocking(False)
    for _ in range(5000):
        try:
            tls.do_handshake()
            return tls
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            await task.deferLater(reactor, 0.002, lambda: None)
    raise AssertionError("TLS handshake did not finish")


async def send_without_blocking(sock, data):
    sock.setblocking(False)
    while data:
        try:
            data = data[sock.send(data):]
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            await task.deferLater(reactor, 0.002, lambda: None)


async def write_paused_session(srv, kind):
    """A stuck client whose session holds subscriptions and is write-paused: (session, socket)."""
    sock = await stuck_client(kind, srv.port)
    await send_messages(kind, sock, subscriptions_of_a_stuck_client())
    subscriptions = srv.manager.methods.subscriptions
    await wait_for(lambda: subscriptions.subscription_count == SUBSCRIBED)
    [session] = srv.manager.sessions.values()
    shrink_send_buffer(session)
    await send_messages(kind, sock, a_batch_filling_the_pipe())
    await wait_for(lambda: session._paused_writing)
    return session, sock


# ---- the tests ----------------------------------------------------------------

@pytest.mark.parametrize("count", [3_000, session_module.MAX_BATCH])
@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_a_batch_of_refused_versions_ends_its_session(server, tmp_path, kind, count):
    """A batch of server.version "9.9" calls from a client that reads: 3,000 is over
    MAX_BATCH and refused whole (the client then leaves); at MAX_BATCH the first
    refusal closes the session, and the server does hang up."""
    srv = await serve(server, tmp_path, kind)
    client = await ReadingClient.connect(kind, srv.port, srv.manager.settings.ssl_certfile)
    refused = {"jsonrpc": "2.0", "method": "server.version", "params": ["t", "9.9"]}
    client.send([dict(refused, id=n) for n in range(count)])
    reply = await client.reply()
    if count > session_module.MAX_BATCH:
        assert reply["error"] == {"code": -32600, "message": "batch of 3,000 requests: at "
                                                             "most 1,000 in one batch"}
        client.close()
    else:
        assert reply["id"] == 0 and reply["error"]["code"] == 1
        await within(client.closed, ENDS_WITHIN)        # the server hung up
    await wait_for(lambda: not srv.manager.sessions, timeout=ENDS_WITHIN)


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_closing_a_write_paused_session_aborts_it_after_the_grace(
        server, tmp_path, kind, monkeypatch):
    monkeypatch.setattr(session_lifecycle, "CLOSE_GRACE_SECS", 0.3)
    srv = await serve(server, tmp_path, kind)
    session, sock = await write_paused_session(srv, kind)
    assert srv.manager.close_sessions(lambda s: True) == [session.session_id]   # admin-style
    await wait_for(lambda: not srv.manager.sessions, timeout=ENDS_WITHIN)
    assert srv.manager.methods.subscriptions.subscription_count == 0
    sock.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_a_second_close_of_a_closing_session_aborts_it(server, tmp_path, kind):
    srv = await serve(server, tmp_path, kind)
    session, sock = await write_paused_session(srv, kind)
    srv.manager.close_sessions(lambda s: True)
    await task.deferLater(reactor, 0.1, lambda: None)
    assert session.session_id in srv.manager.sessions     # its grace is 10 s
    srv.manager.close_sessions(lambda s: True)
    await wait_for(lambda: not srv.manager.sessions, timeout=ENDS_WITHIN)
    assert srv.manager.methods.subscriptions.subscription_count == 0
    sock.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest_twisted.ensureDeferred
async def test_the_idle_sweep_ends_a_write_paused_session(server, tmp_path, kind,
                                                          monkeypatch):
    """The first sweep closes it; the next finds it still there and aborts it."""
    monkeypatch.setattr(SessionManager, "IDLE_CHECK_SECS", 0.2)
    srv = await serve(server, tmp_path, kind, session_timeout=600)
    session, sock = await write_paused_session(srv, kind)
    srv.manager.settings.session_timeout = 0.1
    await wait_for(lambda: not srv.manager.sessions, timeout=ENDS_WITHIN)
    assert srv.manager.methods.subscriptions.subscription_count == 0
    sock.close()


@pytest_twisted.ensureDeferred
async def test_a_closed_session_stops_answering_the_rest_of_its_batch(server):
    """After the refusal that closes it, none of the batch's other items runs."""
    srv = await server()
    client = await ReadingClient.connect("tcp", srv.port)
    client.send([{"id": 1, "method": "server.version", "params": ["t", "9.9"]},
                 {"id": 2, "method": "server.version", "params": ["t", "1.4"]},
                 {"id": 3, "method": "server.ping"}])
    assert (await client.reply())["id"] == 1
    await within(client.closed, ENDS_WITHIN)
    assert client.line.lines.pending == []
    assert srv.manager.stats.requests["server.ping"] == 0

