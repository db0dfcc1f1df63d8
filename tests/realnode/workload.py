"""A wallet workload for the real node: a few thousand transactions over a few hundred blocks.

The node's own wallet makes every transaction (BSV signatures need
SIGHASH_FORKID, so the node signs): payments with `sendtoaddress`, `sendmany`
to several addresses, OP_RETURN data carriers, consolidations of many coins of
one address, and chains of unconfirmed transactions each spending the last
one's output.  Some of each is left in the mempool at the end.
"""

import random
from dataclasses import dataclass, field

COIN = 100_000_000


@dataclass
class Workload:
    """How much to make; the defaults are what the suite uses."""

    blocks: int = 300
    payments_per_block: int = 8
    addresses: int = 40
    seed: int = 9


@dataclass
class Generated:
    """What the workload made, for the tests to look things up quickly."""

    addresses: list
    miner: str
    counts: dict = field(default_factory=dict)


def btc(sats: int) -> float:
    return round(sats / COIN, 8)


class WalletDriver:
    """Makes transactions with the node's wallet; counts what it made."""

    def __init__(self, node, rng, addresses):
        self.node = node
        self.rng = rng
        self.addresses = addresses
        self.counts = {"payment": 0, "sendmany": 0, "op_return": 0, "consolidation": 0,
                       "chained": 0}

    def amount(self):
        return btc(self.rng.randrange(100_000, 200_000_000))

    def payments(self, n):
        rng = self.rng
        self.node.batch("sendtoaddress", [(rng.choice(self.addresses), self.amount())
                                          for _ in range(n)])
        self.counts["payment"] += n

    def sendmany(self):
        payees = self.rng.sample(self.addresses, self.rng.randrange(3, 9))
        self.node.call("sendmany", "", {a: self.amount() for a in payees})
        self.counts["sendmany"] += 1

    def _sign_and_send(self, raw):
        signed = self.node.call("signrawtransaction", raw)
        assert signed["complete"], signed
        return self.node.call("sendrawtransaction", signed["hex"])

    def op_return(self):
        data = self.rng.randbytes(self.rng.randrange(1, 80)).hex()
        raw = self.node.call("createrawtransaction", [],
                             {"data": data, self.rng.choice(self.addresses): self.amount()})
        funded = self.node.call("fundrawtransaction", raw)
        self._sign_and_send(funded["hex"])
        self.counts["op_return"] += 1

    def consolidation(self, max_inputs=25):
        """Every confirmed coin of the address holding most, into one output of another."""
        coins = self.node.call("listunspent", 1, 9_999_999, self.addresses)
        by_address = {}
        for c in coins:
            by_address.setdefault(c["address"], []).append(c)
        richest = max(by_address.values(), key=len, default=[])[:max_inputs]
        if len(richest) < 3:
            return
        total = sum(round(c["amount"] * COIN) for c in richest)
        fee = 200 * len(richest) + 500
        raw = self.node.call("createrawtransaction",
                             [{"txid": c["txid"], "vout": c["vout"]} for c in richest],
                             {self.rng.choice(self.addresses): btc(total - fee)})
        self._sign_and_send(raw)
        self.counts["consolidation"] += 1

    def chain(self, length):
        """A payment, then `length` transactions each spending the previous one's output."""
        address = self.rng.choice(self.addresses)
        value = self.rng.randrange(50_000_000, 100_000_000)
        txid = self.node.call("sendtoaddress", address, btc(value))
        vout = self._vout_paying(txid, address, value)
        for _ in range(length):
            value -= 1_000
            address = self.rng.choice(self.addresses)
            raw = self.node.call("createrawtransaction", [{"txid": txid, "vout": vout}],
                                 {address: btc(value)})
            txid, vout = self._sign_and_send(raw), 0
        self.counts["chained"] += length + 1

    def _vout_paying(self, txid, address, value):
        tx = self.node.call("getrawtransaction", txid, 1)
        for out in tx["vout"]:
            if address in out["scriptPubKey"].get("addresses", ()) and \
                    round(out["value"] * COIN) == value:
                return out["n"]
        raise AssertionError(f"{txid} does not pay {address}")


def generate(node, workload=Workload()) -> Generated:
    """Run the workload on a fresh regtest node; leave a little in its mempool."""
    rng = random.Random(workload.seed)
    miner = node.call("getnewaddress")
    node.call("generatetoaddress", 110, miner)
    addresses = node.batch("getnewaddress", [()] * workload.addresses)
    wallet = WalletDriver(node, rng, addresses)
    for height in range(workload.blocks):
        wallet.payments(workload.payments_per_block)
        if height % 2 == 0:
            wallet.sendmany()
        if height % 5 == 1:
            wallet.op_return()
        if height % 7 == 3:
            wallet.consolidation()
        if height % 10 == 5:
            wallet.chain(rng.randrange(2, 6))
        node.call("generatetoaddress", 1, rng.choice([miner, *addresses]))
    # Left unconfirmed: payments, a chain and an OP_RETURN.
    wallet.payments(workload.payments_per_block)
    wallet.chain(3)
    wallet.op_return()
    wallet.sendmany()
    return Generated(addresses, miner, wallet.counts)
