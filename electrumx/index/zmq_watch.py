"""Hearing of blocks and transactions at once: the node's ZMQ notifications.

bitcoind publishes, with `-zmqpubhashblock`, `-zmqpubrawtx` and
`-zmqpubsequence`, one three-frame message per event: the topic, the body,
and a 4-byte little-endian counter that the node keeps per topic and adds
one to at every message.  A block (hashblock, or sequence's "C"/"D") pokes
the prefetcher; a transaction (rawtx, or sequence's "A"/"R") asks for a
mempool refresh, which the indexer coalesces (one refresh under way, at most
one more pending), so a burst of thousands of messages costs two refreshes.

Messages are hints, never data: a block is still fetched from the node over
RPC and the mempool still listed whole, so a forged or garbled message costs
one coalesced refresh and can change no answer.  A refresh compares the
node's whole mempool listing with ours, so nothing a lost message announced
stays missed once any refresh runs; a gap in a topic's counter (messages
lost, or a node restarted, which starts its counters at 0 again) triggers
one at once, and is counted and logged.  A malformed message is treated as
a gap.  Polling stays on at its usual intervals: with no publisher, a
silent one or one that went away, the server works as without ZMQ.

pyzmq is used without its threads or asyncio layers: each SUB socket's
`zmq.FD` is registered with the reactor as an `IReadDescriptor`.  That
descriptor is edge-triggered (it signals that the socket's state changed,
not that a message waits), so every `doRead` drains the socket with NOBLOCK
for as long as `zmq.EVENTS` says a message is there, and checks again after
the last.  A drain stops after MAX_PER_TURN messages and continues on the
next reactor turn, so a flood cannot starve clients.  libzmq does its
network I/O in a C thread of its own (the context's one I/O thread); no
Python code runs there.  txzmq, which does the same registration, was not
used: it adds a dependency and a factory/connection layer for the few lines
needed here.
"""

from dataclasses import dataclass, field

import zmq
from twisted.application import service
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from electrumx.logs import Logger

BLOCK, MEMPOOL = "block", "mempool"
"""What a message announces: a change of the chain, or of the mempool."""

MAX_PER_TURN = 500
"""Messages read in one reactor turn before clients get theirs."""
RECEIVE_HWM = 1000
"""Messages libzmq queues for us before it drops the newest: a burst beyond this is a
gap, whose refresh catches up with whatever was dropped."""
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""A larger message (a rawtx beyond any consensus limit) makes libzmq drop the
connection, which it then makes again."""
LOG_EVERY_SECS = 300.0
"""Gaps and malformed messages are logged at most this often (with counts), so a
flood of them does not flood the log."""


class Malformed(ValueError):
    """A message that is no notification of a topic we subscribed to."""


def classify(frames, topics) -> tuple[bytes, int, str]:
    """(topic, counter, BLOCK or MEMPOOL) of a message's frames; Malformed otherwise.

    `topics` are the topics subscribed to (ZMQ's filter is by prefix: a
    "rawtxlock" message would pass a "rawtx" subscription).
    """
    if len(frames) != 3:
        raise Malformed(f"{len(frames)} frames, not 3")
    topic, body, counter = frames
    if topic not in topics:
        raise Malformed(f"topic {topic[:20]!r}")
    if len(counter) != 4:
        raise Malformed(f"a counter of {len(counter)} bytes, not 4")
    sequence = int.from_bytes(counter, "little")
    if topic == b"hashblock" and len(body) == 32:
        return topic, sequence, BLOCK
    if topic == b"rawtx" and body:
        return topic, sequence, MEMPOOL
    if topic == b"sequence":
        # 32-byte hash, a label, and for mempool events their 8-byte mempool sequence.
        if len(body) == 33 and body[32:] in (b"C", b"D"):
            return topic, sequence, BLOCK
        if len(body) == 41 and body[32:33] in (b"A", b"R"):
            return topic, sequence, MEMPOOL
    raise Malformed(f"a {topic.decode()} body of {len(body)} bytes")


@dataclass
class ZmqCounts:
    """What was heard, for the metrics and the admin RPC."""

    messages: dict = field(default_factory=dict)
    """topic -> messages received."""
    gaps: int = 0
    """Messages lost, as the counters' jumps show (a node restart counts as one)."""
    malformed: int = 0


@implementer(IReadDescriptor)
class SubscriberSocket:
    """One SUB socket connected to one endpoint, read from the reactor.

    `on_message(frames)` gets each message's frames.  The socket connects in
    the background and again whenever the connection drops; a publisher that
    is not there yet costs nothing.
    """

    def __init__(self, context, reactor, url: str, topics, on_message):
        self.reactor = reactor
        self.url = url
        self.on_message = on_message
        self._socket = context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.IPV6, 1)        # tcp://[::1]:port too
        for topic in topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic)
        self._socket.connect(url)
        self._fd = self._socket.getsockopt(zmq.FD)
        self._later = None          # the next turn's drain, after MAX_PER_TURN messages

    def start(self):
        self.reactor.addReader(self)
        self.doRead()               # messages may have come before the registration

    def close(self):
        self.reactor.removeReader(self)
        if self._later is not None and self._later.active():
            self._later.cancel()
        self._later = None
        self._socket.close()

    # ---- IReadDescriptor -------------------------------------------------

    def fileno(self) -> int:
        return -1 if self._socket.closed else self._fd

    def logPrefix(self) -> str:
        return "zmq"

    def connectionLost(self, reason):
        pass        # only called as the reactor stops; close() does the rest

    def doRead(self):
        """Read every message waiting, up to MAX_PER_TURN; the rest on the next turn."""
        self._later = None
        socket = self._socket
        for _ in range(MAX_PER_TURN):
            if socket.closed or not socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                return
            try:
                frames = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.on_message(frames)
        if not socket.closed:
            self._later = self.reactor.callLater(0, self.doRead)


class ZmqWatcher(service.Service):
    """Subscribes to the node's ZMQ topics and tells the indexer what they announce.

    `urls` maps each topic (b"hashblock", b"rawtx", b"sequence") to its
    endpoint; topics on one endpoint share a socket.  `on_block()` and
    `on_mempool()` are called at once for every announcement and gap; their
    callees do the coalescing.
    """

    log = Logger()

    def __init__(self, reactor, urls: dict, on_block, on_mempool):
        self.setName("zmq")
        self.reactor = reactor
        self.urls = dict(urls)
        self.on_block = on_block
        self.on_mempool = on_mempool
        self.counts = ZmqCounts(messages={topic.decode(): 0 for topic in self.urls})
        self._expected: dict[bytes, int] = {}      # topic -> the counter of its next message
        self._context = None
        self._sockets: list[SubscriberSocket] = []
        self._unlogged = {"gaps": 0, "malformed": 0}
        self._logged_at = None

    @classmethod
    def from_settings(cls, settings, reactor, on_block, on_mempool):
        """The watcher of ZMQ_BLOCK_URL, ZMQ_TX_URL and ZMQ_SEQUENCE_URL; None if none is set."""
        urls = {topic: url for topic, url in ((b"hashblock", settings.zmq_block_url),
                                              (b"rawtx", settings.zmq_tx_url),
                                              (b"sequence", settings.zmq_sequence_url)) if url}
        return cls(reactor, urls, on_block, on_mempool) if urls else None

    def startService(self):
        super().startService()
        self._context = zmq.Context(io_threads=1)
        by_url: dict[str, list[bytes]] = {}
        for topic, url in self.urls.items():
            by_url.setdefault(url, []).append(topic)
        for url, topics in by_url.items():
            sock = SubscriberSocket(self._context, self.reactor, url, topics, self._received)
            self._sockets.append(sock)
            sock.start()
            self.log.info("listening for the node's {topics} notifications on {url}",
                          topics="/".join(t.decode() for t in topics), url=url)

    def stopService(self):
        super().stopService()
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        if self._context is not None:
            self._context.term()
            self._context = None

    def _received(self, frames):
        try:
            topic, sequence, kind = classify(frames, self.urls)
        except Malformed as e:
            self.counts.malformed += 1
            self._note("malformed", "a malformed ZMQ message ({why})", why=e)
            self._refresh_all()
            return
        name = topic.decode()
        self.counts.messages[name] += 1
        expected = self._expected.get(topic)
        self._expected[topic] = (sequence + 1) & 0xFFFFFFFF
        if expected is not None and sequence != expected:
            self.counts.gaps += 1
            self._note("gaps", "ZMQ {topic} message {got} came after {last}: messages were "
                       "lost (or the node restarted); refreshing",
                       topic=name, got=sequence, last=(expected - 1) & 0xFFFFFFFF)
            self._refresh_all()
        elif kind == BLOCK:
            self.on_block()
        else:
            self.on_mempool()

    def _refresh_all(self):
        self.on_block()
        self.on_mempool()

    def _note(self, kind, text, **fields):
        """Log a gap or a malformed message, at most once every LOG_EVERY_SECS (with how
        many were not logged since)."""
        now = self.reactor.seconds()
        self._unlogged[kind] += 1
        if self._logged_at is not None and now - self._logged_at < LOG_EVERY_SECS:
            return
        self._logged_at = now
        self.log.warn(text + " ({gaps} gaps and {malformed} malformed messages since the "
                      "last such line)", **fields, **self._unlogged)
        self._unlogged = {"gaps": 0, "malformed": 0}
