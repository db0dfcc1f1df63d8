"""The regtest node fails the ways real nodes fail, and control calls can always heal it."""

import pytest
import pytest_twisted
from twisted.internet import error, reactor, task

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
    await rpc.result("regtest_fail", "slow", None, 0.05)
    assert await rpc.result("getblockcount") == height                # late, but right
    await rpc.result("regtest_fail", None)
    assert await rpc.result("getblockcount") == height
    _s, _r, err = await rpc.call("regtest_fail", "explode")
    assert err["code"] == -8
    _s, _r, err = await rpc.call("regtest_fail", "refuse")
    assert err["code"] == -8                                          # would never come back


@pytest_twisted.ensureDeferred
async def test_refusing_connections_for_a_while(regtest_node, node_client):
    rpc = node_client(regtest_node)
    assert await rpc.result("regtest_fail", "refuse", 0.3) is True
    with pytest.raises(error.ConnectionRefusedError):
        await rpc.call("getblockcount")
    await wait_for(lambda: regtest_node._port is not None)
    assert await rpc.result("getblockcount") == regtest_node.node.height


@pytest_twisted.ensureDeferred
async def test_failures_heal_by_themselves(regtest_node, node_client):
    rpc = node_client(regtest_node)
    await regtest_node.fail("warmup", seconds=0.1)
    _s, _r, err = await rpc.call("getblockcount")
    assert err["code"] == -28
    await task.deferLater(reactor, 0.2, lambda: None)
    assert await rpc.result("getblockcount") == regtest_node.node.height
