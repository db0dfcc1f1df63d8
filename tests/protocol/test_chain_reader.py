"""The read API as the protocol layer sees it: the real ChainReader over a real index
is an IChainReader, asks the node for clients, and tells its listeners of a change
only once it has forgotten the answers the change made stale."""

from zope.interface import implementer
from zope.interface.verify import verifyObject

from electrumx.index.daemon import Daemon
from electrumx.interfaces import IChainReader, IIndexListener, INodeRelay
from electrumx.protocol.subscriptions import SCRIPTHASH_METHOD, SubscriptionRegistry
from tests.fixtures.blocks import coinbase, script_for, spend
from tests.protocol.test_methods_support import FakeSession, hx, resolve, sh
from tests.protocol.test_methods_support import node  # noqa: F401  (a fixture)


def test_the_reader_and_the_registry_provide_their_interfaces(node):
    assert verifyObject(IChainReader, node.reader)
    assert verifyObject(IIndexListener, node.reader)
    registry = SubscriptionRegistry(node.reader, max_send=1_000_000)
    assert verifyObject(IIndexListener, registry)


def test_the_node_calls_the_reader_relays_are_an_interface_of_their_own(node):
    """The reader needs only INodeRelay: the test node's fake provides just that, and
    the real node client provides it as part of INodeClient."""
    assert verifyObject(INodeRelay, node.daemon)
    assert INodeRelay.implementedBy(Daemon)


def test_the_reader_asks_the_node_for_clients(node):
    reader = node.reader
    assert reader.header_len == len(reader.header(0)) == 80
    assert reader.fee_estimate_target(7) == node.db.coin.bucket_estimatefee_block_target(7)
    assert resolve(reader.estimatefee(6, "ECONOMICAL")) == node.daemon.fee
    resolve(reader.relayfee())
    resolve(reader.node_mempool_info())
    resolve(reader.node_network_info())
    assert resolve(reader.broadcast("00")) == "ab" * 32
    assert resolve(reader.broadcast_package(["00", "01"])) == node.daemon.package_result
    assert node.daemon.calls == [
        ("estimatefee", 6, "ECONOMICAL"), ("relayfee",), ("mempool_info",), ("network_info",),
        ("broadcast", "00"), ("submit_package", ["00", "01"])]
    assert reader.fee_histogram() == node.mempool.histogram


@implementer(IIndexListener)
class HistoryAtChange:
    """A listener noting what the reader answers for one script when told of a change."""

    def __init__(self, reader, hashX):
        self.reader = reader
        self.hashX = hashX
        self.seen = []

    def on_index_change(self, touched, height):
        self.seen.append(self.reader.confirmed_history(self.hashX))


def test_listeners_are_told_after_the_reader_forgot_stale_answers(node):
    """Script 7's history is cached by the reader when a registry computes its status;
    a block spending from it must not be answered from that cache to the listeners."""
    registry = SubscriptionRegistry(node.reader, max_send=1_000_000)
    listener = HistoryAtChange(node.reader, hx(7))
    assert verifyObject(IIndexListener, listener)
    node.reader.add_listener(listener)
    session = FakeSession()
    before = registry.subscribe(session, sh(7))
    cached = node.reader.confirmed_history(hx(7))
    height = node.db.height + 1
    node.chain.add_block([coinbase(height, [(50, script_for(9))]),
                          spend([(node.chain.txs[5][0].txid, 0)], [(49, script_for(3))])])
    node.add_blocks(node.chain.blocks[-1:])       # tells the reader, as the indexer does
    fresh = node.db.history(hx(7), None)
    assert fresh != cached
    assert listener.seen == [fresh]
    now = node.reader.status(hx(7))
    assert now != before
    assert session.notifications == [(SCRIPTHASH_METHOD, [sh(7), now])]


@implementer(IIndexListener)
class Broken:
    def on_index_change(self, touched, height):
        raise RuntimeError("listener bug")


def test_a_failing_listener_is_logged_and_the_others_are_still_told(node, log_lines):
    later = HistoryAtChange(node.reader, hx(7))
    node.reader.add_listener(Broken())
    node.reader.add_listener(later)
    node.reader.on_index_change({hx(7)}, node.db.height)
    assert later.seen == [node.db.history(hx(7), None)]
    assert any("failed" in line and "listener bug" in line for line in log_lines)
