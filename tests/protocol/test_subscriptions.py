"""The subscription registry: notifications on a real index, fan-out cost, and limits."""

import pytest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from electrumx.chain.hashes import hash_to_hex_str, hashX_from_script
from electrumx.interfaces import IChainReader
from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.outpoint_subs import OUTPOINT_METHOD, outpoint_key
from electrumx.protocol.subscriptions import (HEADERS_METHOD, SCRIPT_BYTES_PER_SUB,
                                              SCRIPTHASH_METHOD, SCRIPTPUBKEY_METHOD,
                                              SubscriptionRegistry)
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




# ---- scripts named by themselves (protocol 1.7) ------------------------------------

def script_notes(session):
    return [params for method, params in session.notifications
            if method == SCRIPTPUBKEY_METHOD]


def test_each_session_is_notified_under_the_name_it_used(node):
    """A 1.7 session named the script itself, a 1.6 one its hash: one status computed,
    each told under its own name and method, and the sessions alike share what they
    hold."""
    registry = registry_for(node)
    by_hash = FakeSession(session_id=1)
    by_script = [FakeSession(session_id=n, version=(1, 7)) for n in (2, 3)]
    registry.subscribe(by_hash, sh(7))
    for session in by_script:
        registry.subscribe_script(session, hx(7), script_for(7))
    mine(node, [spend([(node.chain.txs[5][0].txid, 0)], [(49, script_for(3))])])
    status = node.reader.status(hx(7))
    assert status_notes(by_hash) == [[sh(7), status]] and script_notes(by_hash) == []
    for session in by_script:
        assert script_notes(session) == [[script_for(7).hex(), status]]
        assert status_notes(session) == []
    first, second = (s.subscription_state.hashXs[hx(7)] for s in by_script)
    assert first is second
    assert registry.unsubscribe_script(by_script[0], hx(7)) is True
    assert registry.unsubscribe_script(by_script[0], hx(7)) is False
    assert registry.subscription_count == 2


def test_long_scripts_count_once_per_128_bytes(node):
    registry = registry_for(node, max_session_subs=5, max_group_subs=6)
    session = FakeSession(session_id=1, version=(1, 7))
    neighbour = FakeSession(session_id=2, version=(1, 7))       # the same /24
    long_script = b"\x51" * (2 * SCRIPT_BYTES_PER_SUB + 1)     # counts 3
    registry.subscribe_script(session, hashX_from_script(long_script), long_script)
    registry.subscribe_script(session, hx(1), script_for(1))
    assert registry.subscription_count == 4
    registry.subscribe_script(session, hashX_from_script(long_script), long_script)
    assert registry.subscription_count == 4                  # held already: no more
    two = b"\x52" * (SCRIPT_BYTES_PER_SUB + 1)
    with pytest.raises(RPCError, match="per-session subscription limit 5"):
        registry.subscribe_script(session, hashX_from_script(two), two)
    registry.subscribe_script(session, hx(2), script_for(2))
    with pytest.raises(RPCError, match="per-group subscription limit 6"):
        registry.subscribe_script(neighbour, hashX_from_script(two), two)
    registry.subscribe_script(neighbour, hx(3), script_for(3))
    registry.session_closed(session)
    assert registry.subscription_count == 1
    registry.session_closed(neighbour)
    assert registry.subscription_count == 0 and registry._group_counts == {}


# ---- outpoints (protocol 1.7) ------------------------------------------------------

def outpoint_notes(session):
    return [params for method, params in session.notifications if method == OUTPOINT_METHOD]


@implementer(IChainReader)
class OutpointCountingReader(CountingReader):
    """The same, counting outpoint statuses computed."""

    def __init__(self, reader):
        super().__init__(reader)
        self.outpoint_reads = []

    def outpoint_status(self, txid, out_idx):
        self.outpoint_reads.append((txid, out_idx))
        return self._reader.outpoint_status(txid, out_idx)


def test_outpoints_are_looked_at_once_per_event_and_only_under_touched_scripts(node):
    reader = OutpointCountingReader(node.reader)
    registry = SubscriptionRegistry(reader, max_send=1_000_000)
    coinbase5 = node.chain.txs[5][0].txid                   # pays script 7, unspent
    sessions = [FakeSession(session_id=n, remote_address=f"10.0.{n}.1", version=(1, 7))
                for n in range(30)]
    for session in sessions:
        status = registry.subscribe_outpoint(session, coinbase5, 0, hx(7))
        assert status.as_json() == {"funder_height": 5}
    assert registry.subscription_count == 30
    held = {id(s.subscription_state.outpoints[outpoint_key(coinbase5, 0)]) for s in sessions}
    assert len(held) == 1                                   # one object for them all
    reader.outpoint_reads.clear()
    # A block touching many scripts, none of them script 7: no outpoint looked at.
    touched, height = mine(node)
    node.reader.on_index_change(touched | {hx(n) for n in range(30, 300)}, height)
    assert reader.outpoint_reads == [] and outpoint_notes(sessions[0]) == []
    # A block spending it: one status computed, every session told once.
    spender = spend([(coinbase5, 0)], [(49, script_for(3))])
    touched, height = mine(node, [spender])
    assert reader.outpoint_reads == [(coinbase5, 0)]
    expected = [hash_to_hex_str(coinbase5), 0,
                {"funder_height": 5, "spender_txhash": hash_to_hex_str(spender.txid),
                 "spender_height": height}]
    for session in sessions:
        assert outpoint_notes(session) == [expected]
    node.reader.on_index_change(touched, height)            # the same again: no news
    assert len(outpoint_notes(sessions[0])) == 1


def test_a_hint_naming_another_script_files_nothing(node):
    registry = registry_for(node)
    session = FakeSession(version=(1, 7))
    coinbase5 = node.chain.txs[5][0].txid
    with pytest.raises(RPCError, match="spk_hint does not match") as caught:
        registry.subscribe_outpoint(session, coinbase5, 0, hx(8))
    assert caught.value.code == BAD_REQUEST
    assert registry.subscription_count == 0 and session.subscription_state.outpoints == {}
    # An outpoint not known yet cannot be checked; subscribing again with another hint
    # files it under the new one, still counted once.
    registry.subscribe_outpoint(session, bytes(32), 0, hx(8))
    registry.subscribe_outpoint(session, bytes(32), 0, hx(9))
    assert registry.subscription_count == 1
    assert list(registry._outpoints._filed) == [hx(9)]
    assert registry.unsubscribe_outpoint(session, bytes(32), 0) is True
    assert registry.unsubscribe_outpoint(session, bytes(32), 0) is False
    assert registry._outpoints._filed == {} and registry._outpoints._subscribers == {}


def test_a_mempool_status_is_looked_at_again_on_a_new_tip(node):
    """An output of a mempool transaction whose parent is unconfirmed (-1) turns 0 when
    the parent confirms, in a block that need not touch the output's script."""
    registry = registry_for(node)
    session = FakeSession(version=(1, 7))
    child = bytes(range(32))
    prevout = outpoint_key(child, 1)
    node.mempool.funded[prevout] = (-1, hx(12))
    assert registry.subscribe_outpoint(session, child, 1, hx(12)).as_json() == \
        {"funder_height": -1}
    node.reader.on_index_change({hx(5)}, node.db.height)    # a mempool refresh: no news
    assert outpoint_notes(session) == []
    node.mempool.funded[prevout] = (0, hx(12))
    touched, _height = mine(node)
    assert hx(12) not in touched
    assert outpoint_notes(session) == [[hash_to_hex_str(child), 1, {"funder_height": 0}]]
    # Evicted: unknown again, told when its script is touched.
    del node.mempool.funded[prevout]
    node.reader.on_index_change({hx(12)}, node.db.height)
    assert outpoint_notes(session)[-1] == [hash_to_hex_str(child), 1, {}]
    assert registry._outpoints._in_mempool == set()


def test_limits_count_outpoints_and_scripts_alike(node):
    registry = registry_for(node, max_session_subs=2, max_subs=3)
    session = FakeSession(session_id=1, version=(1, 7))
    other = FakeSession(session_id=2, remote_address="10.9.9.9", version=(1, 7))
    registry.subscribe_script(session, hx(1), script_for(1))
    registry.subscribe_outpoint(session, bytes(32), 0, hx(1))
    registry.subscribe_outpoint(session, bytes(32), 0, hx(1))     # held: no new slot
    with pytest.raises(RPCError, match="per-session subscription limit 2"):
        registry.subscribe_outpoint(session, bytes(32), 1, hx(1))
    registry.subscribe_outpoint(other, bytes(32), 1, hx(1))
    with pytest.raises(RPCError, match="server subscription limit 3"):
        registry.subscribe_script(other, hx(2), script_for(2))
    registry.session_closed(session)
    assert registry.subscription_count == 1
    assert list(registry._outpoints._subscribers) == [hx(1) + outpoint_key(bytes(32), 1)]
