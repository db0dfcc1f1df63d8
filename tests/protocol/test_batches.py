"""Batches over real sockets: their length is capped, their items pay the cost limits as
they run, and their reply stops growing at MAX_SEND, while other clients are served."""

import time
import tracemalloc

import orjson
import pytest_twisted
from twisted.internet import defer, reactor, task

from electrumx.protocol.costs import ERROR_COST
from electrumx.protocol.session import MAX_BATCH
from tests.fixtures.regtest import wait_for, within
from tests.protocol.test_transport import connect, server, version  # noqa: F401 (fixture)

CHAIN_HEIGHT = 320
"""Blocks the tests mine first, so that a chunk of headers is 51 KB of JSON."""
PEAK_LIMIT = 3_000_000
"""Most memory the test's batch may take at its peak (1.4 MB measured): its parsed
requests (800 KB for 1,000 items), its reply up to MAX_SEND (200 KB) and a few
chunks under way.  Before batches were bounded it took 119 MB, all its replies."""
PROMPT_SECS = 1.0
"""Slowest answer to a probe's ping while a batch runs that still counts as prompt
(they take about a millisecond; the batches of the issue held them up 7 s)."""


def headers_batch(count, start_id=0):
    return [{"id": n, "method": "blockchain.block.headers", "params": [0, 2016]}
            for n in range(start_id, start_id + count)]


async def longer_chain(srv):
    srv.node.node.mine(CHAIN_HEIGHT - srv.harness.db.height)
    await wait_for(lambda: srv.harness.db.height == CHAIN_HEIGHT)


async def negotiated(port):
    client = await connect(port)
    client.send(version())
    await client.reply()
    return client


class Probe:
    """A second client pinging in a loop, keeping each answer's latency."""

    def __init__(self, client):
        self.client = client
        self.latencies = []
        self.running = True
        self.done = defer.ensureDeferred(self._run())

    async def _run(self):
        n = 100
        while self.running:
            n += 1
            start = time.monotonic()
            self.client.send({"id": n, "method": "server.ping"})
            assert (await self.client.reply())["id"] == n
            self.latencies.append(time.monotonic() - start)
            await task.deferLater(reactor, 0.005, lambda: None)

    async def stop(self):
        self.running = False
        await within(self.done, 10)
        return max(self.latencies)


@pytest_twisted.ensureDeferred
async def test_an_over_long_batch_gets_one_error_and_none_of_it_runs(server):
    srv = await server(max_recv=1_000_000)
    client = await negotiated(srv.port)
    [session] = srv.manager.sessions.values()
    cost_before = session.cost.current()
    client.send([{"id": n, "method": "server.ping"} for n in range(MAX_BATCH + 1)])
    reply = await client.reply()
    assert reply == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "batch of 1,001 requests: at most 1,000 in one batch"}}
    assert srv.manager.stats.requests["server.ping"] == 0
    assert session.cost.current() - cost_before >= ERROR_COST
    client.send([{"id": n, "method": "server.ping"} for n in range(MAX_BATCH)])
    assert len(await client.reply()) == MAX_BATCH
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_batch_stops_running_once_its_reply_passes_max_send(server):
    """Without cost limits, 1,000 chunks of headers (51 MB of replies): the batch stops
    after some 200 KB (MAX_SEND) and answers "response too large"; meanwhile its memory
    stays near MAX_SEND and a probe's pings are answered promptly."""
    max_send = 200_000
    srv = await server(max_recv=1_000_000, max_send=max_send, cost_soft_limit=0,
                       cost_hard_limit=0)
    await longer_chain(srv)
    client = await negotiated(srv.port)
    probe = Probe(await negotiated(srv.port))
    await wait_for(lambda: len(probe.latencies) >= 3)
    item_size = len(orjson.dumps({"jsonrpc": "2.0", "id": 999, "result": {
        "count": CHAIN_HEIGHT + 1, "max": 2016, "hex": "00" * 80 * (CHAIN_HEIGHT + 1)}}))
    client.send(headers_batch(3))               # warms the caches before measuring
    await client.reply()
    tracemalloc.start()
    try:
        client.send(headers_batch(1000))
        reply = await client.reply()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    slowest_ping = await probe.stop()
    assert reply == {"jsonrpc": "2.0", "id": None,
                     "error": {"code": -32600, "message": "response too large"}}
    ran = srv.manager.stats.requests["blockchain.block.headers"] - 3
    concurrency = srv.manager.settings.initial_concurrent
    assert ran <= max_send // item_size + concurrency + 1          # not 1,000
    assert peak < PEAK_LIMIT, f"{peak:,d} bytes traced"
    assert slowest_ping < PROMPT_SECS
    client.send({"id": 1, "method": "server.ping"})                 # still served
    assert (await client.reply())["id"] == 1
    client.transport.loseConnection()
    probe.client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_batch_past_the_hard_limit_is_cut_off_mid_batch(server):
    """Each item costs 40: between the limits the items sleep, yet the cost is read again
    after the sleep, and the batch ends with "excessive resource usage" past 1,000."""
    srv = await server(max_recv=1_000_000, cost_soft_limit=100, cost_hard_limit=1_000,
                       request_sleep=50)
    client = await negotiated(srv.port)
    client.send(headers_batch(500))
    reply = await client.reply()
    assert reply["error"] == {"code": -101, "message": "excessive resource usage"}
    assert isinstance(reply["id"], int)
    await within(client.closed, 10)
    ran = srv.manager.stats.requests["blockchain.block.headers"]
    concurrency = srv.manager.settings.initial_concurrent
    assert ran <= 1_000 // 40 + concurrency, ran                   # not 500


@pytest_twisted.ensureDeferred
async def test_a_batch_of_invalid_requests_is_cut_off_past_the_hard_limit(server):
    """Invalid items run no handler, yet each costs ERROR_COST and is checked too."""
    srv = await server(max_recv=1_000_000, cost_soft_limit=100, cost_hard_limit=1_000)
    client = await negotiated(srv.port)
    client.send([{"jsonrpc": "2.0", "id": n} for n in range(500)])     # no method
    reply = await client.reply()
    assert reply["error"] == {"code": -101, "message": "excessive resource usage"}
    await within(client.closed, 10)
    assert srv.manager.stats.errors[-32600] <= 1_000 // ERROR_COST + 1    # not 500


@pytest_twisted.ensureDeferred
async def test_a_batch_answers_in_request_order_with_its_notifications_left_out(server):
    srv = await server(max_recv=1_000_000)
    client = await negotiated(srv.port)
    db = srv.harness.db
    client.send([{"id": 5, "method": "blockchain.block.header", "params": [3]},
                 {"method": "server.ping"},
                 {"id": "x", "method": "no.such.method"},
                 {"id": 2, "method": "blockchain.block.header", "params": [1]}])
    replies = await client.reply()
    assert [r["id"] for r in replies] == [5, "x", 2]
    assert replies[0]["result"] == db.header(3).hex()
    assert replies[1]["error"]["code"] == -32601
    client.send([{"method": "server.ping"}], {"id": 9, "method": "server.ping"})
    assert (await client.reply())["id"] == 9         # nothing for the batch of notifications
    client.transport.loseConnection()
