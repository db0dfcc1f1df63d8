"""estimatefee (and its per-tip cache), relayfee, and the mempool.* methods."""

import pytest
from twisted.internet import defer

from electrumx.protocol.errors import BAD_REQUEST, DAEMON_ERROR, RPCError
from tests.fixtures.blocks import coinbase, script_for
from tests.protocol.test_methods_support import (DaemonError, FakeSession, make_methods,
                                                 resolve)
from tests.protocol.test_methods_support import node  # noqa: F401  (a fixture)


def call(methods, session, name, *args):
    return resolve(methods.handler(session, name)(session, *args))


def estimate_calls(node):
    return [c for c in node.daemon.calls if c[0] == "estimatefee"]


def test_estimatefee_by_version(node):
    methods = make_methods(node)
    old, new = FakeSession(version=(1, 4)), FakeSession(version=(1, 6))
    assert call(methods, old, "blockchain.estimatefee", 6) == 0.00012
    assert call(methods, new, "blockchain.estimatefee", 6, "economical") == 0.00012
    assert call(methods, new, "blockchain.estimatefee", 6, None) == 0.00012
    assert estimate_calls(node) == [("estimatefee", 6, None), ("estimatefee", 6, "ECONOMICAL")]
    with pytest.raises(TypeError):       # the transport answers INVALID_PARAMS
        methods.handler(old, "blockchain.estimatefee")(old, 6, "ECONOMICAL")


@pytest.mark.parametrize("args", [(-1,), ("6",), (True,), (6.0,), (None,), (6, "FAST"),
                                  (6, 1), (6, "")])
def test_estimatefee_refuses_bad_params(node, args):
    with pytest.raises(RPCError) as caught:
        call(make_methods(node), FakeSession(), "blockchain.estimatefee", *args)
    assert caught.value.code == BAD_REQUEST
    assert estimate_calls(node) == []


def test_estimates_are_cached_per_bucket_until_the_tip_changes(node):
    methods = make_methods(node)
    session = FakeSession()
    for number in (13, 20, 25, 14):      # all in bitcoind's 25-block bucket
        assert call(methods, session, "blockchain.estimatefee", number) == 0.00012
    assert estimate_calls(node) == [("estimatefee", 25, None)]
    assert session.cost == pytest.approx(4 * 0.1 + 2.0)       # one cache miss
    chain = node.chain
    chain.add_block([coinbase(6, [(50, script_for(8))])])
    node.add_blocks(chain.blocks[-1:])
    node.daemon.fee = 0.0002
    assert call(methods, session, "blockchain.estimatefee", 25) == 0.0002
    assert len(estimate_calls(node)) == 2


def test_concurrent_requests_share_one_daemon_call(node):
    node.daemon.hold_estimates = True
    methods = make_methods(node)
    sessions = [FakeSession(session_id=n) for n in range(5)]
    results = [defer.ensureDeferred(methods.handler(s, "blockchain.estimatefee")(s, 2))
               for s in sessions]
    assert len(estimate_calls(node)) == 1 and not any(d.called for d in results)
    node.daemon.release_estimates()
    assert [d.result for d in results] == [0.00012] * 5
    assert sum(s.cost > 1 for s in sessions) == 1              # only one paid the miss


def test_a_failed_estimate_is_not_cached(node):
    node.daemon.hold_estimates = True
    methods = make_methods(node)
    session = FakeSession()
    first = [defer.ensureDeferred(methods.handler(session, "blockchain.estimatefee")(session, 3))
             for _ in range(2)]
    node.daemon._held.pop().errback(DaemonError(-32603, "fee estimation unavailable"))
    for d in first:
        failure = []
        d.addErrback(failure.append)
        assert failure[0].value.code == DAEMON_ERROR
    node.daemon.hold_estimates = False
    assert call(methods, session, "blockchain.estimatefee", 3) == 0.00012
    assert len(estimate_calls(node)) == 2


def test_relayfee_only_before_1_6(node):
    methods = make_methods(node)
    assert call(methods, FakeSession(version=(1, 4, 2)), "blockchain.relayfee") == 0.00001
    assert methods.handler(FakeSession(version=(1, 6)), "blockchain.relayfee") is None


def test_relayfee_daemon_error(node):
    node.daemon.relayfee = lambda: defer.fail(DaemonError(-1, "node down"))
    with pytest.raises(RPCError) as caught:
        call(make_methods(node), FakeSession(version=(1, 4)), "blockchain.relayfee")
    assert caught.value.code == DAEMON_ERROR


def test_fee_histogram(node):
    methods = make_methods(node)
    session = FakeSession()
    assert call(methods, session, "mempool.get_fee_histogram") == [[12.0, 30_000],
                                                                   [1.0, 60_000]]
    node.reader.mempool = None
    assert call(methods, session, "mempool.get_fee_histogram") == []


def test_mempool_get_info(node):
    methods = make_methods(node)
    assert call(methods, FakeSession(version=(1, 6)), "mempool.get_info") == {
        "mempoolminfee": 0.00002, "minrelaytxfee": 0.00001, "incrementalrelayfee": 0.00001}
    assert methods.handler(FakeSession(version=(1, 4, 2)), "mempool.get_info") is None
