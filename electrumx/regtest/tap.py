"""`twistd electrumx-regtest` (and `python -m electrumx.regtest`): the node on its own."""

from twisted.application import service
from twisted.python import usage

from electrumx.coins import BitcoinRegtest
from electrumx.logs import Logger
from electrumx.regtest.cache import load_or_generate
from electrumx.regtest.node import RegtestNode
from electrumx.regtest.service import RegtestNodeService
from electrumx.regtest.workload import SIZES, WorkloadParams

log = Logger()


def _address_script(address: str) -> bytes:
    try:
        return BitcoinRegtest.address_to_script(address)
    except ValueError as e:
        raise usage.UsageError(f"not a regtest address: {address!r} ({e})") from None


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
        ["cache-dir", None, None, "where generated chains are kept "
                                  "(default $XDG_CACHE_HOME/txelectrumx/regtest)"],
        ["coinbase-address", None, None, "regtest address the coinbases pay"],
        ["zmqpubhashblock", None, None, "publish new block hashes over ZMQ on this endpoint "
                                        "(tcp://127.0.0.1:28332; port * picks one)"],
        ["zmqpubrawtx", None, None, "publish raw transactions over ZMQ on this endpoint"],
        ["zmqpubsequence", None, None, "publish ZMQ sequence notifications on this endpoint"],
        ["txindex", None, 1, "1: getrawtransaction finds confirmed transactions without a "
                             "block hash (ElectrumX needs it, so 1 here); 0: only with one, "
                             "as bitcoind's default", int],
    ]

    def __init__(self):
        super().__init__()
        self["pay-to"] = []

    def opt_pay_to(self, address):
        """A regtest address that must receive payments in the chain (repeatable)."""
        self["pay-to"].append(address)

    def postOptions(self):
        if self["size"] not in SIZES:
            raise usage.UsageError(f"--size must be one of {', '.join(SIZES)}")
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError("--port must be between 0 and 65535")
        if self["txindex"] not in (0, 1):
            raise usage.UsageError("--txindex must be 0 or 1")
        if self["block-interval"] < 0:
            raise usage.UsageError("--block-interval cannot be negative")
        self["extra-payees"] = [_address_script(a) for a in self["pay-to"]]
        address = self["coinbase-address"]
        self["coinbase-script"] = _address_script(address) if address else None


def build_node(size="small", seed=1, reveal=-1, cache_dir=None, clock=None,
               extra_payees=(), coinbase_script=None):
    """A RegtestNode on a cached generated chain, and the chain's expected answers."""
    params = WorkloadParams.preset(size, seed=seed, extra_payees=extra_payees,
                                   coinbase_script=coinbase_script)
    chain = load_or_generate(params, cache_dir, log)
    node = RegtestNode(chain.blocks, None if reveal < 0 else reveal, clock)
    return node, chain.expected


def makeService(options):
    """The node's service tree, from parsed Options."""
    from twisted.internet import reactor
    node, _expected = build_node(options["size"], options["seed"], options["reveal"],
                                 options["cache-dir"], reactor, options["extra-payees"],
                                 options["coinbase-script"])
    node.txindex = bool(options["txindex"])
    top = service.MultiService()
    zmq = {topic: options[f"zmqpub{topic}"] for topic in ("hashblock", "rawtx", "sequence")
           if options[f"zmqpub{topic}"]}
    RegtestNodeService(reactor, node, options["interface"], options["port"],
                       options["rpcuser"], options["rpcpassword"],
                       reveal_interval=options["block-interval"] or None, zmq=zmq
                       ).setServiceParent(top)
    return top
