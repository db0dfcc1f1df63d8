"""The subscription registry: notifications on a real index, fan-out cost, and limits."""

import pytest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from electrumx.interfaces import IChainReader
from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.subscriptions import HEADERS_METHOD, SCRIPTHASH_METHOD, SubscriptionRegistry
from tests.fixtures.blocks import coinbase, script_for, spend
from tests.protocol.test_methods_support import FakeSession, hx, sh
from tests.protocol.test_methods_support import node  # noqa: F401  (a fixture)


def registry_for(node, **limits):
    return SubscriptionRegistry(node.reader, max_send=1_000_000, **limits)


def mine(node, txs=()):
    """Add a block (a coinbase to script 9, then `txs`) and tell the reader as the indexer
    would (the reader tells the registries)."""
    height = node.db.height + 1
    node.chain.add_block([coinbase(height, [(50, script_for(9))]), *txs])
    return node.add_blocks(node.chain.blocks[-1:]), node.db.height


def status_notes(session):
    return [params for method, params in session.notifications if method == SCRIPTHASH_METHOD]


def header_notes(session):
    return [params for method, params in session.notifications if method == HEADERS_METHOD]


def test_notified_when_a_block_changes_the_status(node):
    registry = registry_for(node)
    session = FakeSession()
    before = registry.subscribe(session, sh(7))
    utxo = node.chain.txs[5][0]
    touched, height = mine(node, [spend([(utxo.txid, 0)], [(49, script_for(3))])])
    after = node.reader.status(hx(7))
    assert after != before
    assert status_notes(session) == [[sh(7), after]]
    # The same event again, or one touching nothing subscribed: nothing is sent.
    node.reader.on_index_change(touched, height)
    node.reader.on_index_change({hx(3), b"\x00" * 11}, height)
    assert len(session.notifications) == 1


def test_new_script_activity_is_notified_from_null(node):
    registry = registry_for(node)
    session = FakeSession()
    assert registry.subscribe(session, sh(20)) is None
    mine(node, [spend([(node.chain.txs[5][0].txid, 0)], [(49, script_for(20))])])
    assert status_notes(session) == [[sh(20), node.reader.status(hx(20))]]


def test_mempool_height_minus_one_becomes_zero_after_an_unrelated_block(node):
    """REFERENCE §1.6: a -1 can turn 0 without the script being touched."""
    registry = registry_for(node)
    session = FakeSession()
    child = bytes(range(32))
    node.mempool.txs[hx(2)] = [(child, -1, 500)]
    with_parent_unconfirmed = registry.subscribe(session, sh(2))
    # A mempool refresh touching other scripts, at the same height: no recheck.
    node.reader.on_index_change({hx(5)}, node.db.height)
    assert session.notifications == []
    # The parent is mined in a block that does not touch script 2.
    node.mempool.txs[hx(2)] = [(child, 0, 500)]
    touched, _height = mine(node)
    assert hx(2) not in touched
    now = node.reader.status(hx(2))
    assert now != with_parent_unconfirmed
    assert status_notes(session) == [[sh(2), now]]
    # Its status no longer involves a -1... but still the mempool: rechecked, unchanged.
    mine(node)
    assert len(status_notes(session)) == 1


def test_mempool_only_events_notify_touched_scripts(node):
    registry = registry_for(node)
    session = FakeSession()
    registry.subscribe(session, sh(6))
    node.mempool.txs[hx(6)] = [(b"\x01" * 32, 0, 100)]
    node.reader.on_index_change({hx(6)}, node.db.height)
    node.reader.on_index_change({hx(6)}, node.db.height)
    assert status_notes(session) == [[sh(6), node.reader.status(hx(6))]]
    assert header_notes(session) == []
    node.mempool.txs.clear()            # mined elsewhere or evicted: back to confirmed only
    node.reader.on_index_change({hx(6)}, node.db.height)
    assert len(status_notes(session)) == 2


def test_headers_once_per_tip(node):
    registry = registry_for(node)
    followers = [FakeSession(session_id=n) for n in range(3)]
    for session in followers:
        assert registry.subscribe_headers(session)["height"] == 5
    bystander = FakeSession(session_id=9)
    registry.subscribe(bystander, sh(1))
    _touched, height = mine(node)
    node.reader.on_index_change(set(), height)           # the mempool refresh after it
    tip = {"hex": node.chain.blocks[-1][:80].hex(), "height": 6}
    for session in followers:
        assert header_notes(session) == [[tip]]
    assert header_notes(bystander) == []


def test_headers_after_a_reorg_to_the_same_height(node):
    registry = registry_for(node)
    session = FakeSession()
    registry.subscribe_headers(session)
    mine(node)
    # Replace block 6 by another block 6.
    node.processor.backup_block()
    node.processor.flush(first_sync=False)
    node.chain = node.chain.fork(5)
    node.chain.add_block([coinbase(6, [(50, script_for(10))])], tag=1)
    node.add_blocks(node.chain.blocks[-1:])
    assert [n[0]["height"] for n in header_notes(session)] == [6, 6]
    assert header_notes(session)[-1][0]["hex"] == node.chain.blocks[-1][:80].hex()


@implementer(IChainReader)
class CountingReader:
    """A ChainReader wrapper counting reads of the confirmed part of a status
    (one per status computed)."""

    def __init__(self, reader):
        self._reader = reader
        self.history_reads = []

    def __getattr__(self, name):
        return getattr(self._reader, name)

    def confirmed_status_hasher(self, hashX, limit):
        self.history_reads.append(hashX)
        return self._reader.confirmed_status_hasher(hashX, limit)


def test_one_status_computation_per_script_per_event(node):
    reader = CountingReader(node.reader)
    assert verifyObject(IChainReader, reader)
    registry = SubscriptionRegistry(reader, max_send=1_000_000)
    sessions = [FakeSession(session_id=n, remote_address=f"10.0.{n}.1") for n in range(40)]
    for session in sessions:
        for n in (1, 2, 6, 7):
            registry.subscribe(session, sh(n))
    assert registry.subscription_count == 160
    reader.history_reads.clear()
    utxo = node.chain.txs[5][0]         # script 7's coinbase, paying scripts 1 and 2
    touched, height = mine(node, [spend([(utxo.txid, 0)],
                                        [(20, script_for(1)), (29, script_for(2))])])
    assert sorted(reader.history_reads) == sorted([hx(1), hx(2), hx(7)])
    # Again with many more scripts touched that nobody follows: still one each.
    reader.history_reads.clear()
    node.reader.on_index_change(touched | {hx(n) for n in range(30, 300)}, height)
    assert sorted(reader.history_reads) == sorted([hx(1), hx(2), hx(7)])
    for session in sessions:
        assert {params[0] for params in status_notes(session)} == {sh(1), sh(2), sh(7)}


def test_a_new_subscriber_seeing_a_new_status_brings_the_others_up_to_date(node):
    registry = registry_for(node)
    first, second = FakeSession(session_id=1), FakeSession(session_id=2)
    registry.subscribe(first, sh(4))
    node.mempool.txs[hx(4)] = [(b"\x02" * 32, 0, 10)]     # no event delivered yet
    fresh = registry.subscribe(second, sh(4))
    assert status_notes(first) == [[sh(4), fresh]]
    assert second.notifications == []


def test_sessions_naming_a_script_differently_get_their_own_name(node):
    """Only the first 11 bytes of a script hash are indexed; each session is
    notified under the script hash it sent."""
    registry = registry_for(node)
    honest, other = FakeSession(session_id=1), FakeSession(session_id=2)
    variant = "deadbeef" + sh(7)[8:]      # display hex: the unindexed bytes come first
    registry.subscribe(other, variant)
    registry.subscribe(honest, sh(7))
    mine(node, [spend([(node.chain.txs[5][0].txid, 0)], [(49, script_for(3))])])
    assert status_notes(honest)[0][0] == sh(7)
    assert status_notes(other)[0][0] == variant
    # Re-subscribing under another name: notified under the new one from then on.
    registry.subscribe(honest, variant)
    mine(node, [spend([(node.chain.txs[-1][1].txid, 0)], [(48, script_for(7))])])
    assert status_notes(honest)[-1][0] == variant


def test_unsubscribe_and_close_stop_notifications(node):
    registry = registry_for(node)
    leaving, closing, staying = (FakeSession(session_id=n) for n in range(3))
    for session in (leaving, closing, staying):
        registry.subscribe(session, sh(7))
        registry.subscribe_headers(session)
    assert registry.unsubscribe(leaving, sh(7)) is True
    assert registry.unsubscribe(leaving, sh(7)) is False
    registry.session_closed(closing)
    registry.session_closed(closing)
    assert closing.subscription_state is None
    mine(node, [spend([(node.chain.txs[5][0].txid, 0)], [(49, script_for(3))])])
    assert len(status_notes(staying)) == 1 and len(header_notes(staying)) == 1
    assert status_notes(leaving) == [] and len(header_notes(leaving)) == 1
    assert closing.notifications == []
    assert registry.subscription_count == 1


def test_a_failing_session_does_not_stop_the_others(node):
    registry = registry_for(node)
    broken, fine = FakeSession(session_id=1), FakeSession(session_id=2)

    def refuse(method, params):
        raise ConnectionError("gone")
    broken.send_notification = refuse
    for session in (broken, fine):
        registry.subscribe(session, sh(7))
    mine(node, [spend([(node.chain.txs[5][0].txid, 0)], [(49, script_for(3))])])
    assert len(status_notes(fine)) == 1


def test_history_outgrowing_the_limit_drops_the_subscription(node):
    registry = SubscriptionRegistry(node.reader, max_send=100 + 99 * 4)   # room for 3
    session = FakeSession()
    registry.subscribe(session, sh(2))   # its 3 transactions
    registry.subscribe_headers(session)
    mine(node, [spend([(node.chain.txs[5][0].txid, 0)], [(49, script_for(2))])])
    assert status_notes(session) == []
    assert session.subscription_state.hashXs == {}
    assert registry.subscription_count == 0


def refused(registry, session, scripthash):
    with pytest.raises(RPCError) as caught:
        registry.subscribe(session, scripthash)
    assert caught.value.code == BAD_REQUEST
    return caught.value.message


def test_per_session_limit(node):
    registry = registry_for(node, max_session_subs=2)
    session, other = FakeSession(session_id=1), FakeSession(session_id=2,
                                                            remote_address="10.9.9.9")
    registry.subscribe(session, sh(1))
    registry.subscribe(session, sh(2))
    registry.subscribe(session, sh(2))                 # already held: no new slot
    assert "per-session subscription limit 2" in refused(registry, session, sh(3))
    registry.subscribe(other, sh(3))
    registry.unsubscribe(session, sh(1))
    registry.subscribe(session, sh(3))
    assert registry.subscription_count == 3


def test_server_limit_and_release_on_close(node):
    registry = registry_for(node, max_subs=3)
    sessions = [FakeSession(session_id=n, remote_address=f"10.0.{n}.1") for n in range(3)]
    for n, session in enumerate(sessions):
        registry.subscribe(session, sh(n + 1))
    late = FakeSession(session_id=7, remote_address="10.7.7.7")
    assert "server subscription limit 3" in refused(registry, late, sh(5))
    assert late.subscription_state.hashXs == {}
    registry.session_closed(sessions[0])
    assert registry.subscribe(late, sh(5)) is not None


def test_group_limit_by_subnet_and_group_key(node):
    registry = registry_for(node, max_group_subs=2)
    a = FakeSession(session_id=1, remote_address="192.0.2.10")
    b = FakeSession(session_id=2, remote_address="192.0.2.200")     # same /24
    c = FakeSession(session_id=3, remote_address="192.0.3.10")      # another /24
    registry.subscribe(a, sh(1))
    registry.subscribe(b, sh(2))
    assert "per-group subscription limit 2" in refused(registry, a, sh(3))
    registry.subscribe(c, sh(3))
    v6a = FakeSession(session_id=4, remote_address="2001:db8:1:2::1")
    v6b = FakeSession(session_id=5, remote_address="2001:db8:1:ffff::2")   # same /48
    registry.subscribe(v6a, sh(1))
    registry.subscribe(v6b, sh(2))
    refused(registry, v6b, sh(3))
    tagged = FakeSession(session_id=6, remote_address="192.0.2.77")
    tagged.group_key = "operator-chosen group"
    registry.subscribe(tagged, sh(4))
    registry.session_closed(b)
    registry.subscribe(a, sh(3))


