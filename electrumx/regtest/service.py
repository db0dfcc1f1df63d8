"""Running the regtest node: listening on HTTP, failure switches, and a Twisted service.

`start_regtest_node` serves a node in any process (tests, the `--demo`
server); `RegtestNodeService` does the same inside a MultiService, optionally
making a block arrive every few seconds.
"""

from twisted.application import service
from twisted.internet import defer, task
from twisted.protocols.policies import WrappingFactory
from twisted.web import server

from electrumx.logs import Logger
from electrumx.regtest.announce import Announcer
from electrumx.regtest.control import ControlMethods
from electrumx.regtest.node import RegtestNode
from electrumx.regtest.rpc import RPCResource, method_table
from electrumx.regtest.rpc_methods import BitcoindMethods
from electrumx.regtest.zmq_pub import ZmqPublisher


class _QuietSite(server.Site):
    """A Site without an access-log line per RPC request."""

    noisy = False

    def log(self, request):
        pass


class RunningNode:
    """A RegtestNode served over HTTP on one address, with the switches tests flip.

    `url` has the credentials in it (for the daemon client); `redacted_url`
    is the one to log.  With `zmq` ({topic: endpoint}, topics of
    `zmq_pub.TOPICS`), the node also publishes those ZMQ notifications;
    `zmq_urls` then has the endpoints bound.
    """

    log = Logger()

    def __init__(self, reactor, node: RegtestNode, interface="127.0.0.1", port=0,
                 user="regtest", password="regtest", zmq=None):
        self.reactor = reactor
        self.node = node
        self._zmq_wanted = dict(zmq or {})
        self.zmq_urls: dict = {}
        self.interface = interface
        self.user, self.password = user, password
        methods = method_table(BitcoindMethods(node, reactor), ControlMethods(node, self.fail))
        self.resource = RPCResource(methods, user, password, reactor)
        self.site = _QuietSite(self.resource)
        self.port_number = port
        self._port = None
        self._connections = WrappingFactory(self.site)      # to drop them, as a node that dies
        self._connections.noisy = False
        self._timers = []
        self._refusal = None        # the DelayedCall that ends a "refuse", while one lasts

    @property
    def _host(self) -> str:
        return f"[{self.interface}]" if ":" in self.interface else self.interface

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@{self._host}:{self.port_number}/"

    @property
    def redacted_url(self) -> str:
        return f"http://{self.user}:***@{self._host}:{self.port_number}/"

    def listen(self):
        """Start listening (port 0 picks a free port, read back into port_number); self."""
        self._port = self.reactor.listenTCP(self.port_number, self._connections,
                                            interface=self.interface)
        self.port_number = self._port.getHost().port
        if self._zmq_wanted and not self.zmq_urls:
            publisher = ZmqPublisher(self._zmq_wanted).bind()
            self.node.announcer = publisher
            self.zmq_urls = dict(publisher.urls)
        return self

    def stop(self):
        """Stop listening, cancel pending switches, answer every waiting long-poll,
        and close the connections clients keep open."""
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers = []
        self._refusal = None
        self.node.notify_waiters()
        if self.zmq_urls:
            self.node.announcer.close()
            self.node.announcer = Announcer()
            self.zmq_urls = {}
        return self._close()

    def _close(self):
        """Stop listening and drop every connection, as a node process that dies does."""
        port, self._port = self._port, None
        for connection in list(self._connections.protocols):
            connection.transport.loseConnection()
        return defer.maybeDeferred(port.stopListening) if port is not None \
            else defer.succeed(None)

    def fail(self, mode, seconds=None, delay=None):
        """Misbehave: "refuse", "warmup", "http500", "corrupt", "misshapen" or "slow";
        None heals.

        With `seconds`, the failure heals by itself after that long ("refuse"
        always needs it: the port and open connections are closed, as by a
        node that stopped, then it listens again).  `delay` is how long "slow"
        answers wait.  Returns a Deferred that fires once the switch is set.
        """
        if mode == "refuse":
            if self._refusal is not None or self._port is None:
                return defer.succeed(None)          # already refusing, or stopped
            self._refusal = self._later(seconds or 1.0, self._listen_again)
            return self._close()
        if mode is None and self._refusal is not None:
            self._listen_again()
        failures = self.resource.failures
        failures.mode = mode
        if delay is not None:
            failures.slow_secs = delay
        if mode is not None and seconds:
            self._later(seconds, setattr, failures, "mode", None)
        return defer.succeed(None)

    def _listen_again(self):
        """End a refusal: listen on the same port again."""
        refusal, self._refusal = self._refusal, None
        if refusal.active():
            refusal.cancel()
        self.listen()

    def _later(self, seconds, f, *args):
        self._timers = [t for t in self._timers if t.active()]
        self._timers.append(self.reactor.callLater(seconds, f, *args))
        return self._timers[-1]


def start_regtest_node(reactor, chain, interface="127.0.0.1", port=0, user="regtest",
                       password="regtest", reveal_height=None, zmq=None):
    """Serve `chain` over HTTP; a Deferred firing with the RunningNode.

    `chain` is a RegtestNode, or raw blocks (a list, or a GeneratedChain) to
    make one from, showing them up to `reveal_height`.
    """
    if not isinstance(chain, RegtestNode):
        blocks = getattr(chain, "blocks", chain)
        chain = RegtestNode(blocks, reveal_height, reactor)
    return defer.maybeDeferred(RunningNode(reactor, chain, interface, port, user,
                                           password, zmq).listen)


class RegtestNodeService(service.Service):
    """The node as a service in a MultiService (twistd electrumx-regtest, the demo).

    Every `reveal_interval` seconds, the next pregenerated block is revealed,
    or once they are all shown a new one is mined from the mempool; then
    `after_block`, if given, is called (the demo refills the mempool there).
    """

    name = "regtest-node"
    log = Logger()

    def __init__(self, reactor, node, interface, port, user, password, on_listening=None,
                 reveal_interval=None, after_block=None, zmq=None):
        self.running_node = RunningNode(reactor, node, interface, port, user, password, zmq)
        self.on_listening = on_listening
        self.reveal_interval = reveal_interval
        self.after_block = after_block
        self._loop = None

    def startService(self):
        super().startService()
        running = self.running_node.listen()
        node = running.node
        self.log.info("regtest node at height {height} of {total} serving on {url}",
                      height=node.height, total=len(node.blocks) - 1, url=running.redacted_url)
        for topic, url in sorted(running.zmq_urls.items()):
            self.log.info("publishing ZMQ {topic} on {url}", topic=topic, url=url)
        if self.on_listening is not None:
            self.on_listening(running)
        if self.reveal_interval:
            # Not a TimerService: that calls at once, and the first block would come
            # with the start rather than one interval after it.
            self._loop = task.LoopingCall(self._next_block)
            self._loop.clock = running.reactor
            self._loop.start(self.reveal_interval, now=False)

    def _next_block(self):
        node = self.running_node.node
        if node.height < len(node.blocks) - 1:
            node.reveal(node.height + 1)
        else:
            node.mine(1)
        self.log.debug("regtest node tip now {height}", height=node.height)
        if self.after_block is not None:
            self.after_block()

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return self.running_node.stop()
