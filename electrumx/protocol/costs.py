"""The per-session cost model of a public server (REFERENCE §2.2).

Every request, error and byte adds to a session's cost; cost decays with
time.  Between the soft and the hard limit a session's requests are slowed
(a sleep before each) and fewer run at once; at the hard limit the session
is disconnected with "excessive resource usage".  A hard limit of 0 turns
all of this off (COST_HARD_LIMIT=0, for private servers).

What each request adds is named at the end of this module, one weight (or
one small formula) per kind of work, so the price list reads in one place.
"""

import math

INITIAL_COST = 5.0
ERROR_COST = 100.0


class CostMeter:
    """One session's cost, decaying on the clock passed in."""

    def __init__(self, clock, *, soft: float, hard: float, bandwidth_unit: int,
                 sleep_secs: float, initial_concurrent: int):
        self.clock = clock
        self.soft = soft
        self.hard = hard
        self.bytes_per_unit = bandwidth_unit
        self.sleep_secs = sleep_secs
        self.initial_concurrent = initial_concurrent
        self.decay_per_sec = hard / 10000 if hard else 0.0
        self.cost = INITIAL_COST
        self._updated = clock.seconds()

    def _decay(self):
        now = self.clock.seconds()
        self.cost = max(0.0, self.cost - (now - self._updated) * self.decay_per_sec)
        self._updated = now

    def current(self) -> float:
        """The cost now, after decay."""
        self._decay()
        return self.cost

    def bump(self, amount: float):
        self._decay()
        self.cost += amount

    def bump_bytes(self, count: int):
        self.bump(count / self.bytes_per_unit)

    def throttle(self, extra_cost: float = 0.0):
        """(seconds to sleep before the next request, requests allowed at once).

        `extra_cost` is what the session's group ran up beyond this session.
        A concurrency of 0 means the session is over the hard limit.
        """
        self._decay()
        cost = self.cost + extra_cost
        if not self.hard or cost <= self.soft:
            return 0.0, self.initial_concurrent
        fraction = min(1.0, (cost - self.soft) / (self.hard - self.soft))
        concurrency = math.ceil((1.0 - fraction) * self.initial_concurrent)
        return fraction * self.sleep_secs, concurrency


# ---- what each request costs (a handler's `session.bump_cost`) ----------------

NEGOTIATE = 0.5
"""server.version: negotiating the protocol version."""
FEATURES = 0.2
"""server.features: building the features dict."""
BANNER = 0.5
"""server.banner: reading the banner file (and maybe asking the node its version)."""
CONSTANT_ANSWER = 0.1
"""server.ping (request or, from 1.7, notification) and server.donation_address: an
answer that costs nothing to make (1.7's ping padding is paid as bytes sent)."""
PEER_LIST = 1.0
"""server.peers.subscribe: picking peers to list."""
ADD_PEER = 100.0
"""server.add_peer: a peer we will resolve, connect to and check."""

HEADERS_SUBSCRIBE = 0.25
"""blockchain.headers.subscribe: the tip's header, then a notification per new tip."""
HEADER = 0.25
"""blockchain.block.header: one header read."""
HEADER_PROOF = 1.0
"""A checkpoint proof (cp_height) on top of a header or a chunk of headers."""


def header_chunk(count: int) -> float:
    """blockchain.block.headers: the `count` headers asked for (one fiftieth each)."""
    return count / 50


ESTIMATEFEE = 0.1
"""blockchain.estimatefee: an estimate from the per-tip cache."""
ESTIMATEFEE_NODE = 2.0
"""blockchain.estimatefee, on top: an estimate the node had to be asked for."""
RELAYFEE = 1.0
"""blockchain.relayfee: a node call."""
FEE_HISTOGRAM = 1.0
"""mempool.get_fee_histogram: the mempool's histogram (cached between refreshes)."""
MEMPOOL_INFO = 1.0
"""mempool.get_info: a node call."""
MEMPOOL_RECENT = 1.0
"""mempool.recent: the last few transactions to enter the mempool."""

BALANCE = 1.0
"""blockchain.scripthash/scriptpubkey.get_balance: the script's UTXOs summed, and its
mempool delta."""
UNSUBSCRIBE = 0.1
"""blockchain.scripthash/scriptpubkey/outpoint.unsubscribe: dropping one subscription."""
OUTPOINT_STATUS = 0.5
"""blockchain.outpoint.get_status and subscribe: a few point reads of the index (the
output's row, its spender's) and two mempool lookups, whatever the script's history."""


def mempool_entries(count: int) -> float:
    """A script's mempool transactions listed (get_mempool, and get_history's tail when
    the page reaches the mempool)."""
    return 0.25 + count / 50


def history(count: int) -> float:
    """get_history (scripthash or scriptpubkey): `count` confirmed entries, those of the
    page asked for (from_height/to_height), not of the whole history."""
    return 0.2 + count * 0.001


def utxos(count: int) -> float:
    """listunspent (scripthash or scriptpubkey): `count` unspent outputs listed."""
    return 1.0 + count / 50


def subscribe(history_length: int) -> float:
    """blockchain.scripthash/scriptpubkey.subscribe: the status hashed over the whole
    history."""
    return 0.3 + history_length * 0.0025


def broadcast(hex_chars: int) -> float:
    """blockchain.transaction.broadcast(_package) and testmempoolaccept: `hex_chars` of
    raw transactions sent to the node."""
    return 0.25 + hex_chars / 5000


TX_GET = 1.0
"""blockchain.transaction.get: a node call."""
TXID_AT = 0.25
"""blockchain.transaction.id_from_pos without a proof: one txid read."""


def merkle(branch) -> float:
    """A transaction's merkle proof: roughly the txids read and hashed, up to
    2**len(branch) of them."""
    return 0.25 + (1 << len(branch)) / 2500
