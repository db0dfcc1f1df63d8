"""`twistd electrumx-regtest` (and `python -m electrumx.regtest`): the node on its own."""

from twisted.application import service
from twisted.python import usage

from electrumx.regtest.cache import load_or_generate
from electrumx.regtest.node import RegtestNode
from electrumx.regtest.service import RegtestNodeService
from electrumx.regtest.workload import SIZES, WorkloadParams


class Options(usage.Options):
    """Options of the regtest node."""

    optParameters = [
        ["interface", None, "127.0.0.1", "address to listen on"],
        ["port", None, 18443, "RPC port (0 picks a free one)", int],
        ["rpcuser", None, "regtest", "RPC user name"],
        ["rpcpassword", None, "regtest", "RPC password"],
        ["size", None, "small", f"chain size preset: {', '.join(SIZES)}"],
        ["seed", None, 1, "workload seed", int],
        ["reveal", None, -1, "height shown at start (-1: the whole chain)", int],
        ["block-interval", None, 0.0, "seconds between new blocks (0: none)", float],
        ["cache-dir", None, None, "where generated chains are kept"],
    ]

    def postOptions(self):
        if self["size"] not in SIZES:
            raise usage.UsageError(f"--size must be one of {', '.join(SIZES)}")


def build_node(size="small", seed=1, reveal=-1, cache_dir=None, clock=None):
    """A RegtestNode on a cached generated chain, and its expected answers."""
    blocks, expected = load_or_generate(WorkloadParams.preset(size, seed=seed), cache_dir)
    node = RegtestNode(blocks, None if reveal < 0 else reveal, clock)
    return node, expected


def makeService(options):
    from twisted.internet import reactor
    node, _expected = build_node(options["size"], options["seed"], options["reveal"],
                                 options["cache-dir"], reactor)
    top = service.MultiService()
    RegtestNodeService(reactor, node, options["interface"], options["port"],
                       options["rpcuser"], options["rpcpassword"],
                       reveal_interval=options["block-interval"] or None
                       ).setServiceParent(top)
    return top
