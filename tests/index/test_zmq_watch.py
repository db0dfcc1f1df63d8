"""The indexer hears of blocks and transactions from the node's ZMQ notifications.

A real built-in node publishes on 127.0.0.1; the indexer polls only every
30 seconds (60 for blocks, with the waitfornewblock long-poll stopped), so
anything seen within a few seconds was seen through ZMQ.  A test publisher
sends garbage and floods.
"""

import time

import pytest
import pytest_twisted
import zmq
from twisted.internet import reactor, task

from electrumx.index.zmq_watch import (BLOCK, MEMPOOL, MAX_PER_TURN, Malformed, ZmqWatcher,
                                       classify)
from tests.fixtures.host import free_port
from tests.fixtures.regtest import wait_for

SLOW_POLLS = dict(block_poll_secs=60, mempool_poll_secs=30)
TOPICS = (b"hashblock", b"rawtx", b"sequence")


def test_messages_are_classified_by_topic_and_body():
    h = bytes(range(32))
    seq = (7).to_bytes(4, "little")
    assert classify([b"hashblock", h, seq], TOPICS) == (b"hashblock", 7, BLOCK)
    assert classify([b"rawtx", b"\x02\x00", seq], TOPICS) == (b"rawtx", 7, MEMPOOL)
    assert classify([b"sequence", h + b"C", seq], TOPICS)[2] == BLOCK
    assert classify([b"sequence", h + b"D", seq], TOPICS)[2] == BLOCK
    assert classify([b"sequence", h + b"A" + bytes(8), seq], TOPICS)[2] == MEMPOOL
    assert classify([b"sequence", h + b"R" + bytes(8), seq], TOPICS)[2] == MEMPOOL
    for frames in ([b"hashblock", h], [b"hashblock", h, seq, b""], [b"rawtxlock", h, seq],
                   [b"hashblock", h[:31], seq], [b"hashblock", h, seq[:3]],
                   [b"rawtx", b"", seq], [b"sequence", h + b"A", seq],
                   [b"sequence", h + b"X" + bytes(8), seq]):
        with pytest.raises(Malformed):
            classify(frames, TOPICS)


def watch(harness, urls):
    """A started ZmqWatcher poking the harness's indexer, stopped by the harness's end."""
    indexer = harness.indexer
    watcher = ZmqWatcher(reactor, urls, indexer.block_announced, indexer.mempool_announced)
    watcher.setServiceParent(indexer)            # started, as the indexer runs
    return watcher


async def heard(watcher, running, timeout=10.0):
    """Probe transactions until the watcher hears one (ZMQ's slow joiner)."""
    for _ in range(int(timeout / 0.1)):
        if sum(watcher.counts.messages.values()):
            return
        running.node.add_random_transactions(1)
        await task.deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("the watcher never heard the node")


async def caught_up_and_listening(start_node, indexer_for, zmq):
    running = start_node(reveal=20, zmq={t: "tcp://127.0.0.1:*" for t in zmq})
    harness = indexer_for(running, **SLOW_POLLS)
    await harness.caught_up()
    harness.indexer.block_watcher.stop()        # blocks by ZMQ alone
    urls = {t.encode(): url for t, url in running.zmq_urls.items()}
    watcher = watch(harness, urls)
    await heard(watcher, running)
    # The probes are indexed (a refresh after the first message); what follows is new.
    await wait_for(lambda: harness.mempool.tx_count == len(running.node.mempool), timeout=5)
    return running, harness, watcher


@pytest.mark.parametrize("topics", [("hashblock", "rawtx"), ("sequence",)])
@pytest_twisted.ensureDeferred
async def test_a_transaction_and_a_block_are_indexed_at_once(start_node, indexer_for, topics):
    running, harness, _watcher = await caught_up_and_listening(start_node, indexer_for, topics)
    node = running.node
    started = time.monotonic()
    [txid] = node.add_random_transactions(1)
    await wait_for(lambda: harness.mempool.has_tx(txid), timeout=3)
    tx_secs = time.monotonic() - started
    started = time.monotonic()
    node.mine(1)
    await wait_for(lambda: harness.db.height == node.height and
                   not harness.mempool.has_tx(txid), timeout=3)
    block_secs = time.monotonic() - started
    assert tx_secs < 1.5 and block_secs < 1.5, (tx_secs, block_secs)   # polls: 30 s, 60 s


@pytest_twisted.ensureDeferred
async def test_lost_messages_are_noticed_and_nothing_is_missed(start_node, indexer_for,
                                                              log_lines):
    running, harness, watcher = await caught_up_and_listening(start_node, indexer_for,
                                                              ("sequence",))
    node = running.node
    node.announcer.drop(3)                      # three "A" messages never arrive
    lost = node.add_random_transactions(3)
    await task.deferLater(reactor, 0.3, lambda: None)
    assert not any(harness.mempool.has_tx(t) for t in lost)     # nothing told the indexer
    assert watcher.counts.gaps == 0
    # The next message shows the gap: a refresh finds all of them.
    [seen] = node.add_random_transactions(1)
    await wait_for(lambda: all(harness.mempool.has_tx(t) for t in lost + [seen]), timeout=3)
    assert watcher.counts.gaps == 1
    assert any("messages were lost" in line for line in log_lines)
    # A lost block announcement: the next message (a transaction's) fetches it too.
    node.announcer.drop(1)
    node.mine(1)
    await task.deferLater(reactor, 0.3, lambda: None)
    assert harness.db.height == node.height - 1
    node.add_random_transactions(1)
    await wait_for(lambda: harness.db.height == node.height, timeout=3)
    assert watcher.counts.gaps == 2


@pytest_twisted.ensureDeferred
async def test_a_restarted_node_counting_from_zero_is_a_gap(start_node, indexer_for):
    running, harness, watcher = await caught_up_and_listening(start_node, indexer_for,
                                                              ("rawtx",))
    running.node.announcer.restarted()
    [txid] = running.node.add_random_transactions(1)
    await wait_for(lambda: harness.mempool.has_tx(txid), timeout=3)
    assert watcher.counts.gaps == 1


@pytest_twisted.ensureDeferred
async def test_no_publisher_leaves_polling_in_charge(start_node, indexer_for):
    running = start_node(reveal=20)
    harness = indexer_for(running, block_poll_secs=0.1, mempool_poll_secs=0.1)
    await harness.caught_up()
    silent = f"tcp://127.0.0.1:{free_port()}"              # nothing listens there
    watcher = watch(harness, {b"rawtx": silent, b"hashblock": silent})
    [txid] = running.node.add_random_transactions(1)
    running.node.mine(1)
    await wait_for(lambda: harness.db.height == running.node.height)
    [txid] = running.node.add_random_transactions(1)
    await wait_for(lambda: harness.mempool.has_tx(txid))
    assert sum(watcher.counts.messages.values()) == 0 and not harness.fatal


class HostilePublisher:
    """A PUB socket of the test's, where the node's would be."""

    def __init__(self):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, 100_000)
        self.socket.bind("tcp://127.0.0.1:*")
        self.url = self.socket.getsockopt(zmq.LAST_ENDPOINT).decode()

    def send(self, *frames):
        self.socket.send_multipart(list(frames))

    def close(self):
        self.socket.close(linger=0)
        self.context.term()


@pytest.fixture
def hostile():
    publisher = HostilePublisher()
    yield publisher
    publisher.close()


@pytest_twisted.ensureDeferred
async def test_garbage_and_a_flood_cost_a_few_refreshes(start_node, indexer_for, hostile):
    running = start_node(reveal=20)
    harness = indexer_for(running, **SLOW_POLLS)
    await harness.caught_up()
    watcher = watch(harness, {b"rawtx": hostile.url, b"hashblock": hostile.url})
    counter = 0
    while not watcher.counts.messages["rawtx"]:             # slow joiner
        hostile.send(b"rawtx", b"\x01", counter.to_bytes(4, "little"))
        counter += 1
        await task.deferLater(reactor, 0.05, lambda: None)
    garbage = [[b"rawtx"], [b"rawtx", b"", b"\x00" * 4], [b"hashblock", b"x", b"\x00" * 4],
               [b"rawtx", b"\x01", b"\x00" * 5], [b"rawtxlock", b"\x01", b"\x00" * 4],
               [b"hashblock", b"\xff" * 32, b"\x00" * 4, b"extra"]]
    for frames in garbage:
        hostile.send(*frames)
    await wait_for(lambda: watcher.counts.malformed == len(garbage), timeout=5)
    requests_before = harness.daemon.request_count
    flood = 50_000
    for n in range(flood):
        hostile.send(b"rawtx", b"\x02" * 200, (counter + n).to_bytes(4, "little"))
    # The reactor keeps turning between batches of MAX_PER_TURN messages.
    turns = 0
    while watcher.counts.messages["rawtx"] < counter + flood * 0.9:
        turns += 1
        await task.deferLater(reactor, 0, lambda: None)
        assert turns < 10 * flood, "the flood was not drained"
    await task.deferLater(reactor, 0.5, lambda: None)
    assert turns >= flood * 0.9 / MAX_PER_TURN / 2
    # Coalesced: a refresh is two or three requests to the node, not one per message.
    refreshes = (harness.daemon.request_count - requests_before) / 2
    assert refreshes < flood / 100, refreshes
    # libzmq may have dropped some of the burst at its high-water mark: counted as a gap.
    assert not harness.fatal
    [txid] = running.node.add_random_transactions(1)
    hostile.send(b"rawtx", b"\x01", (counter + flood).to_bytes(4, "little"))
    await wait_for(lambda: harness.mempool.has_tx(txid), timeout=3)
