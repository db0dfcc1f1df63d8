"""Running the regtest node: listening, failure simulation, and a Twisted service."""

from twisted.application import service
from twisted.internet import defer, task
from electrumx.logs import Logger
from twisted.web import server

from electrumx.regtest.node import RegtestNode
from electrumx.regtest.rpc import NodeRPC, RPCResource


class _QuietSite(server.Site):
    """A Site without an access-log line per RPC request."""

    noisy = False

    def log(self, request):
        pass


class RunningNode:
    """A RegtestNode served over HTTP on one port."""

    log = Logger()

    def __init__(self, reactor, node: RegtestNode, interface="127.0.0.1", port=0,
                 user="regtest", password="regtest"):
        self.reactor = reactor
        self.node = node
        self.interface = interface
        self.user, self.password = user, password
        self.rpc = NodeRPC(node, reactor)
        self.resource = RPCResource(self.rpc, user, password, reactor)
        self.site = _QuietSite(self.resource)
        self.port_number = port
        self._port = None
        self._refuse_call = None

    @property
    def redacted_url(self) -> str:
        return f"http://{self.user}:***@{self.interface}:{self.port_number}/"

    @property
    def url(self) -> str:
        return (f"http://{self.user}:{self.password}@{self.interface}:{self.port_number}/")

    def listen(self):
        self._port = self.reactor.listenTCP(self.port_number, self.site,
                                            interface=self.interface)
        self.port_number = self._port.getHost().port
        return self

    def stop(self):
        if self._refuse_call is not None and self._refuse_call.active():
            self._refuse_call.cancel()
        port, self._port = self._port, None
        return port.stopListening() if port is not None else defer.succeed(None)

    def fail(self, mode, seconds=None):
        """Misbehave: "refuse" (for `seconds`), "warmup", "http500", "corrupt", "slow"; None heals."""
        if mode == "refuse":
            d = self.stop()
            self._refuse_call = self.reactor.callLater(seconds or 1.0, self.listen)
            return d
        self.resource.failure = mode
        if seconds:
            self.reactor.callLater(seconds, setattr, self.resource, "failure", None)
        return defer.succeed(None)


class RegtestNodeService(service.Service):
    """The node as a service in a MultiService (twistd electrumx-regtest, the demo)."""

    name = "regtest-node"
    log = Logger()

    def __init__(self, reactor, node, interface, port, user, password, on_listening=None,
                 reveal_interval=None):
        self.running_node = RunningNode(reactor, node, interface, port, user, password)
        self.on_listening = on_listening
        self.reveal_interval = reveal_interval
        self._loop = None

    def startService(self):
        super().startService()
        self.running_node.listen()
        node = self.running_node.node
        self.log.info("regtest node at height {height} of {total} serving on {url}",
                      height=node.height, total=len(node.blocks) - 1,
                      url=self.running_node.redacted_url)
        if self.on_listening is not None:
            self.on_listening(self.running_node)
        if self.reveal_interval:
            self._loop = task.LoopingCall(self._next_block)
            self._loop.clock = self.running_node.reactor
            self._loop.start(self.reveal_interval, now=False)

    def _next_block(self):
        node = self.running_node.node
        if node.height < len(node.blocks) - 1:
            node.reveal(node.height + 1)
        else:
            node.mine(1)

    def stopService(self):
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return self.running_node.stop()
