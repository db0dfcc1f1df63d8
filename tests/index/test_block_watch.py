"""New blocks are noticed at once through the node's waitfornewblock long-poll."""

import time

import pytest_twisted
from twisted.internet import defer, task

from electrumx.index.block_watch import BlockWatcher
from electrumx.index.daemon import UNAVAILABLE
from electrumx.index.node_replies import METHOD_NOT_FOUND
from electrumx.interfaces import DaemonError
from tests.fixtures.regtest import wait_for


@pytest_twisted.ensureDeferred
async def test_a_block_is_indexed_long_before_the_next_poll(start_node, indexer_for):
    node = start_node(reveal=20)
    harness = indexer_for(node, block_poll_secs=60)      # polling alone would take a minute
    await harness.caught_up()
    await wait_for(lambda: harness.indexer.block_watcher._pending is not None)
    started = time.monotonic()
    node.node.mine(1)
    await wait_for(lambda: harness.db.height == 21, timeout=20)
    assert time.monotonic() - started < 20


class LongPollingDaemon:
    """call_once answers from a script: Deferreds the test fires, or errors."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def call_once(self, method, *params):
        self.calls.append((method, params))
        answer = self.answers.pop(0) if self.answers else defer.Deferred()
        if isinstance(answer, Exception):
            return defer.fail(answer)
        return answer if isinstance(answer, defer.Deferred) else defer.succeed(answer)


def test_each_new_tip_pokes_once():
    tips = [{"hash": "aa", "height": 1}, {"hash": "aa", "height": 1}, {"hash": "bb", "height": 2}]
    pokes = []
    watcher = BlockWatcher(LongPollingDaemon(*tips), task.Clock(), lambda: pokes.append(1))
    watcher.start()
    assert len(pokes) == 2                      # "aa" once (a timeout repeats it), then "bb"
    watcher.stop()


def test_a_node_without_the_call_leaves_polling_to_do_the_work():
    daemon = LongPollingDaemon(DaemonError(METHOD_NOT_FOUND, "Method not found"))
    d = BlockWatcher(daemon, task.Clock(), lambda: None).start()
    assert d.called and len(daemon.calls) == 1


def test_an_unreachable_node_is_asked_again_later_and_stop_cancels_the_poll():
    clock = task.Clock()
    waiting = defer.Deferred()
    daemon = LongPollingDaemon(DaemonError(UNAVAILABLE, "node unavailable"), waiting)
    watcher = BlockWatcher(daemon, clock, lambda: None)
    finished = watcher.start()
    assert len(daemon.calls) == 1
    clock.advance(BlockWatcher.RETRY_SECS)
    assert len(daemon.calls) == 2 and not finished.called
    watcher.stop()
    assert waiting.called and finished.called      # the long-poll was cancelled
