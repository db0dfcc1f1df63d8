"""One POST to a node over real HTTP on 127.0.0.1: a reply, or NodeUnavailable."""

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.web.client import Agent

from electrumx.index import node_http
from electrumx.index.node_replies import NodeUnavailable
from tests.fixtures.regtest import within
from tests.fixtures.rpcserver import RPCTestServer

BODY = orjson.dumps({"jsonrpc": "1.0", "id": 1, "method": "getblockcount", "params": []})


@pytest.fixture
def server():
    s = RPCTestServer({"getblockcount": lambda: 9}).start()
    yield s
    s.stop()


def post(server, *, userinfo=None, timeout=5.0, limit=1 << 20):
    url = f"http://127.0.0.1:{server.port_number}/".encode()
    userinfo = userinfo or f"{server.user}:{server.password}".encode()
    return defer.Deferred.fromCoroutine(node_http.post(
        Agent(reactor), reactor, url, userinfo, BODY, timeout=timeout, limit=limit))


@pytest_twisted.ensureDeferred
async def test_a_reply_and_its_status(server):
    status, data = await within(post(server), 5)
    assert status == 200 and orjson.loads(data)["result"] == 9
    status, _data = await within(post(server, userinfo=b"user:wrong"), 5)
    assert status == 401


@pytest_twisted.ensureDeferred
async def test_a_reply_over_the_limit_is_no_reply(server):
    server.resource.mode = "huge"
    with pytest.raises(NodeUnavailable, match="a reply over 100,000 bytes"):
        await within(post(server, limit=100_000), 5)


@pytest_twisted.ensureDeferred
async def test_a_silent_or_absent_node_is_no_reply(server):
    server.resource.mode = "trickle"
    with pytest.raises(NodeUnavailable, match="timed out"):
        await within(post(server, timeout=0.2), 5)
    await server.stop()
    with pytest.raises(NodeUnavailable, match="connection refused"):
        await within(post(server), 5)


@pytest_twisted.ensureDeferred
async def test_a_cancelled_post_is_cancelled_not_unavailable(server):
    server.resource.mode = "trickle"
    d = post(server)
    d.cancel()
    with pytest.raises(defer.CancelledError):
        await within(d, 5)
