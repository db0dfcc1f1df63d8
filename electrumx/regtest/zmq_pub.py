"""The node's ZMQ notifications, published as bitcoind publishes them.

bitcoind's `-zmqpubhashblock`, `-zmqpubrawtx` and `-zmqpubsequence` each
send, per event, three frames: the topic, the body, and the topic's message
counter (4 bytes, little-endian, from 0, one more per message).  Bodies:

  hashblock  the block hash (32 bytes, display order)
  rawtx      the raw transaction: one per mempool arrival, and one per
             transaction of every block connected
  sequence   a hash (display order) and a label: C / D for a block connected
             or disconnected; A / R for a transaction added to or removed from
             the mempool (not by a block), followed by the mempool sequence
             number (8 bytes, little-endian)

Each endpoint is a PUB socket bound on it (tcp://127.0.0.1:* picks a free
port; `urls` holds the one bound); topics given the same endpoint share it.
A PUB socket never blocks its sender: a subscriber too slow, or none, loses
messages, as with bitcoind.  `drop(count)` makes the next messages be
counted but not sent, so a test can see that a subscriber notices the gap.
"""

import zmq

from electrumx.chain.block import header_hash
from electrumx.chain.tx import parse_tx_for_index, read_varint
from electrumx.regtest.announce import Announcer

TOPICS = ("hashblock", "rawtx", "sequence")
SEND_HWM = 1000
"""bitcoind's default -zmqpub*hwm."""


class ZmqPublisher(Announcer):
    """PUB sockets for the topics in `urls` ({topic: endpoint})."""

    def __init__(self, urls: dict):
        unknown = set(urls) - set(TOPICS)
        if unknown:
            raise ValueError(f"unknown ZMQ topics: {', '.join(sorted(unknown))}")
        self.urls = dict(urls)
        self.counters = {topic: 0 for topic in self.urls}
        self.sent = 0
        self.dropped = 0
        self._to_drop = 0
        self._mempool_sequence = 0
        self._context = zmq.Context(io_threads=1)
        self._sockets = {}          # topic -> its socket (shared by topics of one endpoint)

    def bind(self):
        """Bind every endpoint (reading back the ports picked for `*`); self."""
        by_url = {}
        for topic, url in self.urls.items():
            sock = by_url.get(url)
            if sock is None:
                sock = by_url[url] = self._context.socket(zmq.PUB)
                sock.setsockopt(zmq.SNDHWM, SEND_HWM)
                sock.setsockopt(zmq.LINGER, 0)
                sock.bind(url)
            self._sockets[topic] = sock
        for topic, sock in self._sockets.items():
            self.urls[topic] = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        return self

    def close(self):
        for sock in set(self._sockets.values()):
            sock.close()
        self._sockets = {}
        self._context.term()

    def drop(self, count: int):
        """Count but do not send the next `count` messages (of any topic)."""
        self._to_drop += count

    def publish(self, topic: str, body: bytes):
        """Send one message of `topic` (if published), or drop it if told to."""
        sock = self._sockets.get(topic)
        if sock is None:
            return
        counter = self.counters[topic]
        self.counters[topic] = (counter + 1) & 0xFFFFFFFF
        if self._to_drop:
            self._to_drop -= 1
            self.dropped += 1
            return
        try:
            sock.send_multipart([topic.encode(), body, counter.to_bytes(4, "little")],
                                zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:           # at the high-water mark: lost, as bitcoind's would be
            self.dropped += 1

    # ---- the node's events -----------------------------------------------

    def tx_added(self, txid, raw):
        self.publish("rawtx", raw)
        self._mempool_event(txid, b"A")

    def txs_removed(self, txids):
        for txid in txids:
            self._mempool_event(txid, b"R")

    def block_connected(self, raw_block):
        count, pos = read_varint(raw_block, 80)
        for _ in range(count):
            end = parse_tx_for_index(raw_block, pos)[3]
            self.publish("rawtx", raw_block[pos:end])
            pos = end
        block_hash = header_hash(raw_block)[::-1]
        self.publish("hashblock", block_hash)
        self.publish("sequence", block_hash + b"C")

    def block_disconnected(self, block_hash):
        self.publish("sequence", block_hash[::-1] + b"D")

    def restarted(self):
        self.counters = {topic: 0 for topic in self.counters}
        self._mempool_sequence = 0

    def _mempool_event(self, txid, label):
        self._mempool_sequence += 1
        self.publish("sequence", txid[::-1] + label
                     + self._mempool_sequence.to_bytes(8, "little"))

    def notifications(self):
        return [{"type": f"pub{topic}", "address": url, "hwm": SEND_HWM}
                for topic, url in sorted(self.urls.items())]
