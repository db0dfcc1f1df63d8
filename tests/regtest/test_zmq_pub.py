"""The built-in node publishes bitcoind's ZMQ notifications: topics, frames and counters,
read by a real SUB socket over 127.0.0.1."""

import pytest_twisted
import zmq
from twisted.internet import reactor, task

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.index.zmq_watch import SubscriberSocket
from tests.fixtures.host import free_port
from tests.fixtures.regtest import wait_for
from tests.regtest.test_entry_points import rpc, start, wait_for_line

ALL_TOPICS = {"hashblock": "tcp://127.0.0.1:*", "rawtx": "tcp://127.0.0.1:*",
              "sequence": "tcp://127.0.0.1:*"}


class Heard:
    """A SUB socket on each of a node's endpoints, keeping every message's frames."""

    def __init__(self, urls):
        self.context = zmq.Context()
        self.messages = []
        self.sockets = [SubscriberSocket(self.context, reactor, url, [topic.encode()],
                                         self.messages.append)
                        for topic, url in urls.items()]
        for sock in self.sockets:
            sock.start()

    def of(self, topic):
        return [(body, int.from_bytes(counter, "little"))
                for t, body, counter in self.messages if t == topic]

    def close(self):
        for sock in self.sockets:
            sock.close()
        self.context.term()


async def subscribed(running, heard, timeout=10.0):
    """Wait out ZMQ's slow joiner: probe transactions until one is heard on every
    transaction topic the node publishes."""
    wanted = {t.encode() for t in running.zmq_urls} & {b"rawtx", b"sequence"}
    for _ in range(int(timeout / 0.1)):
        running.node.add_random_transactions(1)
        await task.deferLater(reactor, 0.1, lambda: None)
        if {m[0] for m in heard.messages} >= wanted:
            await task.deferLater(reactor, 0.1, lambda: None)     # the last probe's rest
            heard.messages.clear()
            return
    raise AssertionError("the subscriber never heard the node")


@pytest_twisted.ensureDeferred
async def test_a_transaction_and_a_block_are_published_as_bitcoind_does(start_node,
                                                                        node_client):
    running = start_node(zmq=ALL_TOPICS)
    assert all(url.startswith("tcp://127.0.0.1:") and not url.endswith(":*")
               for url in running.zmq_urls.values())
    heard = Heard(running.zmq_urls)
    try:
        await subscribed(running, heard)
        node = running.node
        rawtx_before = node.announcer.counters["rawtx"]
        [txid] = node.add_random_transactions(1)
        await wait_for(lambda: len(heard.of(b"sequence")) == 1)
        [(raw, counter)] = heard.of(b"rawtx")
        assert raw == node.mempool.get(txid).serialize() and counter == rawtx_before
        [(body, _)] = heard.of(b"sequence")
        assert body[:32] == txid[::-1] and body[32:33] == b"A" and len(body) == 41
        heard.messages.clear()
        in_block = 1 + len(node.mempool)            # the coinbase, and the mempool
        [block_hash] = node.mine(1)
        await wait_for(lambda: heard.of(b"hashblock") and heard.of(b"sequence"))
        [(body, _)] = heard.of(b"hashblock")
        assert body.hex() == hash_to_hex_str(block_hash)       # display order, as bitcoind
        assert heard.of(b"sequence")[-1][0] == block_hash[::-1] + b"C"
        await wait_for(lambda: len(heard.of(b"rawtx")) == in_block)
        # Each topic counts its own messages, one apart.
        counters = [c for _b, c in heard.of(b"rawtx")]
        assert counters == list(range(rawtx_before + 1, rawtx_before + 1 + in_block))
        rpc = node_client(running)
        notifications = await rpc.result("getzmqnotifications")
        assert sorted(n["type"] for n in notifications) == ["pubhashblock", "pubrawtx",
                                                            "pubsequence"]
    finally:
        heard.close()


@pytest_twisted.ensureDeferred
async def test_removals_and_a_reorg_are_published(start_node):
    running = start_node(zmq={"sequence": "tcp://127.0.0.1:*"})
    heard = Heard(running.zmq_urls)
    try:
        node = running.node
        await subscribed(running, heard)
        [txid] = node.add_random_transactions(1)
        node.drop_from_mempool(txid)
        await wait_for(lambda: len(heard.of(b"sequence")) == 2)
        labels = [body[32:33] for body, _ in heard.of(b"sequence")]
        assert labels == [b"A", b"R"]
        mempool_seqs = [int.from_bytes(body[33:], "little") for body, _ in
                        heard.of(b"sequence")]
        assert mempool_seqs[1] == mempool_seqs[0] + 1
        heard.messages.clear()
        old_tip = node.tip_hash
        node.reorg(1)
        await wait_for(lambda: len(heard.of(b"sequence")) >= 3)
        bodies = [body for body, _ in heard.of(b"sequence")]
        assert bodies[0] == old_tip[::-1] + b"D"
        assert [b[32:] for b in bodies[1:3]] == [b"C", b"C"]
    finally:
        heard.close()


@pytest_twisted.ensureDeferred
async def test_the_node_can_be_told_to_lose_messages(start_node, node_client):
    running = start_node(zmq={"rawtx": "tcp://127.0.0.1:*"})
    heard = Heard(running.zmq_urls)
    try:
        await subscribed(running, heard)
        rpc = node_client(running)
        assert await rpc.result("regtest_zmq_drop", 2) == 0
        running.node.add_random_transactions(3)
        await wait_for(lambda: heard.of(b"rawtx"))
        [(_raw, counter)] = heard.of(b"rawtx")
        assert running.node.announcer.dropped == 2
        assert counter == running.node.announcer.counters["rawtx"] - 1   # the gap shows
    finally:
        heard.close()


@pytest_twisted.ensureDeferred
async def test_a_node_without_zmq_says_so(regtest_node, node_client):
    rpc = node_client(regtest_node)
    assert await rpc.result("getzmqnotifications") == []
    _status, _result, error = await rpc.call("regtest_zmq_drop", 1)
    assert error["code"] == -8


def test_twistd_electrumx_regtest_publishes_on_the_endpoints_given(tmp_path):
    port = free_port()
    proc, log = start(["electrumx-regtest", "--size", "tiny", "--port", str(port),
                       "--zmqpubsequence=tcp://127.0.0.1:*"], tmp_path)
    try:
        content = wait_for_line(log, "publishing ZMQ sequence on tcp://127.0.0.1:", proc)
        [notification] = rpc(port, "getzmqnotifications")
        assert notification["type"] == "pubsequence"
        assert f"on {notification['address']}" in content
        assert rpc(port, "regtest_zmq_drop", 1) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
