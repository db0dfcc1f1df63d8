"""Shared pieces of the method and subscription tests (this module has no tests).

A real index: blocks from `tests.fixtures.blocks` applied by the real
BlockProcessor into LevelDB under tmp_path, read through the real ChainReader.
Small stand-ins for what is not under test: a session (the contract's
attributes), and under the reader a mempool (the calls the reader makes) and
a node client (the node calls the reader makes, answering Deferreds).
"""

import types

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer

from electrumx.chain.hashes import hashX_from_script, scripthash_from_script
from electrumx.coins import BitcoinRegtest
from electrumx.index.block_processor import BlockProcessor
from electrumx.index.daemon import TxLookup
from electrumx.index.db import IndexDB
from electrumx.index.read_api import ChainReader
from electrumx.interfaces import DaemonError, INodeRelay
from electrumx.network.directory import NoPeers
from electrumx.protocol.methods import ElectrumMethods
from electrumx.protocol.subscriptions import SubscriptionRegistry
from electrumx.protocol.session_groups import SessionGroups
from tests.fixtures.blocks import build_chain, script_for


class FakeSession:
    """The session attributes of the protocol contract, recording what it is sent."""

    GROUPS = SessionGroups(None, ipv4_bits=24, ipv6_bits=48, hard_limit=10000,
                           exempt_private=False)
    """Groups as a server makes them, private addresses included (tests use those)."""

    def __init__(self, session_id=1, remote_address="127.0.0.1", version=(1, 6),
                 is_tor=False, max_send=1_000_000):
        self.session_id = session_id
        self.remote_address = remote_address
        self.group_key = self.GROUPS.group_name(remote_address) or remote_address
        self.is_tor = is_tor
        self.client_name = ""
        self.protocol_version = version
        self.subscription_state = None
        self.max_send = max_send
        self.cost = 0.0
        self.notifications = []
        self.closed = False

    def bump_cost(self, amount):
        self.cost += amount

    def send_notification(self, method, params):
        self.notifications.append((method, params))

    def close(self):
        self.closed = True


class FakeMempool:
    """The mempool calls of the read API over plain dicts.

    `txs[hashX]` is [(txid, height 0|-1, fee)] in protocol order; `deltas`,
    `outputs` ([(txid, idx, value)]) and `spent` (prevouts) likewise; `funded`
    (prevout -> (height, hashX)) and `spenders` (prevout -> (txid, height)) for
    outpoint statuses.
    """

    def __init__(self):
        self.txs = {}
        self.deltas = {}
        self.outputs = {}
        self.spent = set()
        self.funded = {}
        self.spenders = {}
        self.histogram = [[12.0, 30_000], [1.0, 60_000]]
        self.tx_count = 0
        self.total_vsize = 0

    def has_tx(self, txid):
        return False

    def transaction_summaries(self, hashX):
        return list(self.txs.get(hashX, ()))

    def balance_delta(self, hashX):
        return self.deltas.get(hashX, 0)

    def unspent_outputs(self, hashX):
        return list(self.outputs.get(hashX, ()))

    def is_spent_in_mempool(self, prevout):
        return prevout in self.spent

    def funding(self, prevout):
        return self.funded.get(prevout)

    def spending(self, prevout):
        return self.spenders.get(prevout)

    def fee_histogram(self):
        return self.histogram


@implementer(INodeRelay)
class FakeDaemon:
    """The node client's calls the ChainReader makes for clients, answering from attributes.

    A `rejection` makes broadcasts fail; `hold_estimates` keeps estimatefee
    answers pending until `release_estimates()`.
    """

    def __init__(self):
        self.calls = []
        self.fee = 0.00012
        self.rejection = None
        self.hold_estimates = False
        self._held = []
        self.package_result = {"package_msg": "success", "tx-results": {}}
        self.network = {"version": 290100, "subversion": "/Satoshi:29.1.0/"}
        self.raw_txs = {}
        self.tx_lookup = TxLookup(txindex=False, block_hash_arg=True)

    def _answer(self, name, *args, result):
        self.calls.append((name, *args))
        if isinstance(result, Exception):
            return defer.fail(Failure(result))
        return defer.succeed(result)

    def broadcast(self, raw_tx):
        return self._answer("broadcast", raw_tx, result=self.rejection or "ab" * 32)

    def estimatefee(self, blocks, mode=None):
        if self.hold_estimates:
            self.calls.append(("estimatefee", blocks, mode))
            held = defer.Deferred()
            self._held.append(held)
            return held
        return self._answer("estimatefee", blocks, mode, result=self.fee)

    def release_estimates(self):
        held, self._held = self._held, []
        for d in held:
            d.callback(self.fee)

    def relayfee(self):
        return self._answer("relayfee", result=0.00001)

    def mempool_info(self):
        return self._answer("mempool_info", result={
            "loaded": True, "size": 3, "mempoolminfee": 0.00002, "minrelaytxfee": 0.00001,
            "incrementalrelayfee": 0.00001})

    def network_info(self):
        return self._answer("network_info", result=self.network)

    def submit_package(self, raw_txs):
        result = self.rejection if self.rejection else self.package_result
        return self._answer("submit_package", raw_txs, result=result)

    def test_mempool_accept(self, raw_txs):
        """Each transaction allowed, named by a txid made of its first byte."""
        return self._answer("test_mempool_accept", raw_txs, result=self.rejection or [
            {"txid": raw[:2] * 32, "wtxid": raw[:2] * 32, "allowed": True} for raw in raw_txs])

    def raw_transaction(self, txid_hex, verbose=False, block_hash=None):
        if txid_hex not in self.raw_txs:
            return self._answer("raw_transaction", txid_hex, verbose,
                                result=DaemonError(-5, "No such mempool or blockchain "
                                                       "transaction"))
        raw = self.raw_txs[txid_hex]
        return self._answer("raw_transaction", txid_hex, verbose,
                            result={"txid": txid_hex, "hex": raw} if verbose else raw)

    def decode_transaction(self, raw_hex):
        return self._answer("decode_transaction", raw_hex, result={})

    def raw_blocks(self, hex_hashes):
        return self._answer("raw_blocks", hex_hashes, result=DaemonError(-1, "no blocks here"))

    def probe_tx_lookup(self):
        return self._answer("probe_tx_lookup", result=self.tx_lookup)


def make_settings(**overrides):
    """The settings the methods read, as a plain namespace."""
    values = dict(
        coin=BitcoinRegtest, max_send=1_000_000, drop_client=None, banner_file=None,
        tor_banner_file=None, donation_address="", report_services=[],
        max_subs=None, max_session_subs=None, max_group_subs=None,
        session_group_by_subnet_ipv4=24, session_group_by_subnet_ipv6=48)
    values.update(overrides)
    return types.SimpleNamespace(**values)


def resolve(result):
    """The value of a handler's result: a plain value, a Deferred or a coroutine,
    all of which complete at once against the stand-ins above."""
    if hasattr(result, "__await__") and not isinstance(result, defer.Deferred):
        result = defer.ensureDeferred(result)
    if not isinstance(result, defer.Deferred):
        return result
    outcome = []
    result.addBoth(outcome.append)
    assert outcome, "the handler's Deferred has not fired"
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def hx(n):
    return hashX_from_script(script_for(n))


def sh(n):
    return scripthash_from_script(script_for(n))


class Node:
    """A real index in a directory, grown block by block, with its ChainReader."""

    def __init__(self, path, coin=BitcoinRegtest):
        self.db = IndexDB(str(path), coin)
        self.db.open()
        self.processor = BlockProcessor(self.db, reorg_limit=10)
        self.mempool = FakeMempool()
        self.daemon = FakeDaemon()
        self.reader = ChainReader(self.db, self.mempool, self.daemon)

    def add_blocks(self, raw_blocks):
        """Apply and flush blocks; returns the scripts they touched."""
        for raw in raw_blocks:
            self.processor.advance_block(raw)
        touched = self.processor.touched_scripts()
        self.processor.flush(first_sync=False)
        self.reader.on_index_change(touched, self.db.height)
        return touched

    def close(self):
        self.db.close()


@pytest.fixture
def node(tmp_path):
    node = Node(tmp_path)
    node.chain = build_chain()
    node.add_blocks(node.chain.blocks)
    yield node
    node.close()


def make_methods(node, **overrides):
    settings = make_settings(**overrides)
    registry = SubscriptionRegistry.from_settings(node.reader, settings)
    return ElectrumMethods(reader=node.reader, settings=settings, subscriptions=registry,
                           peers=NoPeers(), clock=None)
