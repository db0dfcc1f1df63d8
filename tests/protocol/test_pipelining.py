"""Pipelined requests: a client may send many before reading, but the server keeps
at most MAX_PENDING_MESSAGES of one session under way and reads the rest only as
those are answered, so memory and the work queued per session stay bounded."""

import orjson
import pytest_twisted
from twisted.internet import reactor, task

from electrumx.chain.hashes import hash_to_hex_str
from tests.fixtures.regtest import wait_for
from tests.protocol.test_transport import connect, server, version  # noqa: F401 (fixture)

REQUESTS = 2_000
MAX_PENDING_MESSAGES = 50     # electrumx.protocol.session's


def slow_requests(count, txid):
    """Requests that each wait for the node (a round trip over HTTP), so they pile up:
    verbose, as raw answers are cached after the first."""
    return b"".join(orjson.dumps({"id": n, "method": "blockchain.transaction.get",
                                  "params": [txid, True]}) + b"\n" for n in range(count))


@pytest_twisted.ensureDeferred
async def test_pipelined_requests_are_read_only_as_they_are_answered(server):
    srv = await server(cost_hard_limit=0)           # no throttling: only the cap bounds it
    txid = hash_to_hex_str(srv.harness.db.tx_hash(1))
    client = await connect(srv.port)
    client.send(version())
    await client.reply()
    [session] = srv.manager.sessions.values()
    client.transport.write(slow_requests(REQUESTS, txid))
    most_under_way = most_backlog = 0
    answered = []
    while len(answered) < REQUESTS:
        # Requests started (each a coroutine until answered) and not yet answered.
        most_under_way = max(most_under_way, session.requests - 1 - len(answered))
        most_backlog = max(most_backlog, len(getattr(session, "_backlog", ())))
        while client.lines.pending:
            answered.append(client.lines.pending.pop(0)["id"])
        await task.deferLater(reactor, 0.001, lambda: None)
    assert sorted(answered) == list(range(REQUESTS))
    assert most_under_way <= MAX_PENDING_MESSAGES + 10  # and replies on their way
    assert most_backlog <= 1_500                         # about one read's worth
    await wait_for(lambda: not session._reading_paused)
    client.transport.loseConnection()
