"""The regtest node fails the ways real nodes fail, and control calls can always heal it."""

import base64
import gc
import socket
from io import BytesIO

import orjson
import pytest
import pytest_twisted
from twisted.internet import error, reactor, task
from twisted.logger import LogLevel, globalLogPublisher
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from tests.fixtures.regtest import wait_for

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


@pytest_twisted.ensureDeferred
async def test_failure_modes_over_rpc(regtest_node, node_client):
    rpc = node_client(regtest_node)
    height = regtest_node.node.height
    assert await rpc.result("regtest_fail", "warmup") is True
    status, _r, err = await rpc.call("getblockcount")
    assert (status, err) == (500, {"code": -28, "message": "Loading block index..."})
    status, reply = await rpc.post([{"id": 1, "method": "getblockcount"}])
    assert status == 200 and reply[0]["error"]["code"] == -28
    assert (await rpc.result("regtest_status"))["height"] == height   # control still works
    await rpc.result("regtest_fail", "http500")
    status, body = await rpc.post({"id": 1, "method": "getblockcount"})
    assert status == 500 and isinstance(body, bytes)
    await rpc.result("regtest_fail", "corrupt")
    status, body = await rpc.post({"id": 1, "method": "getblockcount"})
    assert status == 200 and isinstance(body, bytes) and body.startswith(b"{")
    await rpc.result("regtest_fail", "misshapen")
    status, body = await rpc.post({"id": 1, "method": "getblockcount"})
    assert status == 200 and body == {"jsonrpc": "2.0"}
    status, body = await rpc.post([{"id": 1, "method": "getblockcount"},
                                   {"id": 2, "method": "getbestblockhash"}])
    assert status == 200 and [reply["id"] for reply in body] == [1]
    await rpc.result("regtest_fail", "slow", None, 0.05)
    assert await rpc.result("getblockcount") == height                # late, but right
    await rpc.result("regtest_fail", None)
    assert await rpc.result("getblockcount") == height
    _s, _r, err = await rpc.call("regtest_fail", "explode")
    assert err["code"] == -8
    _s, _r, err = await rpc.call("regtest_fail", "refuse")
    assert err["code"] == -8                                          # would never come back


@pytest_twisted.ensureDeferred
async def test_a_client_that_leaves_before_its_slow_answer_is_let_go(regtest_node, node_client):
    rpc = node_client(regtest_node)
    await rpc.result("regtest_fail", "slow", None, 0.2)
    body = orjson.dumps({"id": 1, "method": "getblockcount"})
    auth = base64.b64encode(f"{rpc.user}:{rpc.password}".encode())
    errors = []

    def observe(event):
        if event["log_level"] >= LogLevel.error:
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        with socket.create_connection(("127.0.0.1", rpc.port)) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth +
                         b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await task.deferLater(reactor, 0.05, lambda: None)    # the request is read
        await task.deferLater(reactor, 0.3, lambda: None)         # its answer is ready
        gc.collect()                # a failed answer would be logged as an unhandled error
    finally:
        globalLogPublisher.removeObserver(observe)
    assert errors == []
    await rpc.result("regtest_fail", None)
    assert await rpc.result("getblockcount") == regtest_node.node.height


@pytest_twisted.ensureDeferred
async def test_refusing_connections_for_a_while(regtest_node, node_client):
    rpc = node_client(regtest_node)
    assert await rpc.result("regtest_fail", "refuse", 0.3) is True
    with pytest.raises(error.ConnectionRefusedError):
        await rpc.call("getblockcount")
    await wait_for(lambda: regtest_node._port is not None)
    assert await rpc.result("getblockcount") == regtest_node.node.height


@pytest_twisted.ensureDeferred
async def test_refusing_drops_open_connections_and_heals_when_told(regtest_node, node_client):
    """As a node process that stops: kept-alive connections close too."""
    pool = HTTPConnectionPool(reactor, persistent=True)
    agent = Agent(reactor, pool=pool)
    auth = b"Basic " + base64.b64encode(b"regtest:regtest")

    async def block_count():
        response = await agent.request(
            b"POST", f"http://127.0.0.1:{regtest_node.port_number}/".encode(),
            Headers({b"Authorization": [auth]}),
            FileBodyProducer(BytesIO(b'{"id": 1, "method": "getblockcount"}')))
        return orjson.loads(await readBody(response))["result"]

    try:
        assert await block_count() == regtest_node.node.height
        await wait_for(lambda: regtest_node._connections.protocols)
        await regtest_node.fail("refuse", seconds=3600)
        await wait_for(lambda: not regtest_node._connections.protocols)
        with pytest.raises(error.ConnectionRefusedError):
            await node_client(regtest_node).call("getblockcount")
        await regtest_node.fail(None)
        assert await block_count() == regtest_node.node.height
    finally:
        await pool.closeCachedConnections()


@pytest_twisted.ensureDeferred
async def test_failures_heal_by_themselves(regtest_node, node_client):
    rpc = node_client(regtest_node)
    await regtest_node.fail("warmup", seconds=0.1)
    _s, _r, err = await rpc.call("getblockcount")
    assert err["code"] == -28
    await task.deferLater(reactor, 0.2, lambda: None)
    assert await rpc.result("getblockcount") == regtest_node.node.height
