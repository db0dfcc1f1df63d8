"""blockchain.scripthash.* against a real index, a stand-in mempool, and the spec's status example."""

import orjson
import pytest

from electrumx.chain.hashes import hash_to_hex_str, hex_str_to_hash
from electrumx.chain.status import status_hash
from electrumx.protocol.errors import BAD_REQUEST, HISTORY_TOO_LONG, RPCError
from electrumx.protocol.subscriptions import history_limit
from tests.protocol.test_methods_support import FakeSession, hx, make_methods, sh
from tests.protocol.test_methods_support import node  # noqa: F401  (a fixture)

# EP:docs/protocol-basics.rst, "Status Example": 3 confirmed and 3 mempool transactions.
SPEC_HISTORY = [
    ("a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347", 2472),
    ("9c42f84b2fcdaff676ba25d9d4941741cc0d1a01cce0c23fdc4c0b2afa38431c", 2473),
    ("770f2d4371b3fabb902dd9a103e2dd005fcd3971181078fca4a2a1d6ff127b30", 2473),
    ("80b19848aed792565ab7c5a79b7c2a00fbf985741579396ebe0ab6098e607311", 0),
    ("e02a1dadfa83b996b24175df807b271ea5d02937ef5b35c195fac1e1bdc3198f", 0),
    ("bb4c8ab438c13b89ca80d1d5bee25b0b6b7f55673f4d801998ba97db161d9e85", -1),
]
SPEC_STATUS = "78e96c6562cafa71c115503b9411fdfdc595a45031e2ab76ff75162fe1b0590d"

MEMPOOL_TX_A = bytes(range(32))
MEMPOOL_TX_B = bytes(range(1, 33))


def test_spec_status_example():
    history = [(hex_str_to_hash(txid), height) for txid, height in SPEC_HISTORY]
    assert status_hash(history).hex() == SPEC_STATUS
    assert status_hash([]) is None


def call(methods, session, name, *args):
    """The handler's result as a client reads it (some results are ready JSON)."""
    return orjson.loads(orjson.dumps(methods.handler(session, name)(session, *args)))


def txid_hex(node, height, pos):
    return node.chain.txs[height][pos].txid_hex


def test_get_history_in_chain_order(node):
    methods = make_methods(node)
    history = call(methods, FakeSession(), "blockchain.scripthash.get_history", sh(1))
    assert history == [{"tx_hash": txid_hex(node, h, p), "height": h}
                       for h, p in ((1, 0), (2, 0), (2, 1), (3, 1), (4, 1))]
    assert call(methods, FakeSession(), "blockchain.scripthash.get_history", sh(99)) == []


def test_a_cached_history_is_dropped_when_its_script_is_touched(node):
    from tests.fixtures.blocks import script_for, spend
    from tests.protocol.test_subscriptions import mine
    node.reader.HISTORY_JSON_MIN = 1            # cache even this short history
    methods = make_methods(node)
    first = call(methods, FakeSession(), "blockchain.scripthash.get_history", sh(1))
    assert call(methods, FakeSession(), "blockchain.scripthash.get_history", sh(1)) == first
    assert node.reader.cache_stats()["history_json"]["hits"] == 1
    touched, height = mine(node, [spend([(node.chain.txs[5][0].txid, 0)],
                                        [(20, script_for(1))])])
    node.reader.on_index_change(touched, height)
    after = call(methods, FakeSession(), "blockchain.scripthash.get_history", sh(1))
    assert after[:-1] == first and after[-1]["height"] == height


def test_a_busy_scripts_status_is_kept_until_the_script_is_touched(node):
    from tests.fixtures.blocks import script_for, spend
    from tests.protocol.test_subscriptions import mine
    from electrumx.protocol.subscriptions import script_status
    node.reader.HISTORY_JSON_MIN = 1            # keep even this short history's
    first = script_status(node.reader, hx(1), 1000)
    assert script_status(node.reader, hx(1), 1000) == first
    assert first[0] == status_hash(node.reader.confirmed_history(hx(1)))
    assert node.reader.cache_stats()["status"]["hits"] == 1
    touched, height = mine(node, [spend([(node.chain.txs[5][0].txid, 0)],
                                        [(20, script_for(1))])])
    node.reader.on_index_change(touched, height)
    history = node.reader.confirmed_history(hx(1))
    assert len(history) == 6
    assert script_status(node.reader, hx(1), 1000) == (status_hash(history), False, 6)


def add_mempool(node):
    """Script 2 gets two mempool transactions: A (confirmed inputs) and B (unconfirmed)."""
    node.mempool.txs[hx(2)] = [(MEMPOOL_TX_A, 0, 200), (MEMPOOL_TX_B, -1, 300)]
    node.mempool.deltas[hx(2)] = -38 + 5
    node.mempool.outputs[hx(2)] = [(MEMPOOL_TX_B, 1, 5)]
    t4 = node.chain.txs[4][1]
    node.mempool.spent.add(t4.txid + (0).to_bytes(4, "little"))


def test_history_mempool_balance_and_utxos_with_the_mempool(node):
    add_mempool(node)
    methods = make_methods(node)
    session = FakeSession(version=(1, 4))
    mempool = [{"tx_hash": hash_to_hex_str(MEMPOOL_TX_A), "height": 0, "fee": 200},
               {"tx_hash": hash_to_hex_str(MEMPOOL_TX_B), "height": -1, "fee": 300}]
    history = call(methods, session, "blockchain.scripthash.get_history", sh(2))
    assert history == [{"tx_hash": txid_hex(node, 2, 1), "height": 2},
                       {"tx_hash": txid_hex(node, 2, 2), "height": 2},
                       {"tx_hash": txid_hex(node, 4, 1), "height": 4}] + mempool
    assert call(methods, session, "blockchain.scripthash.get_mempool", sh(2)) == mempool
    assert call(methods, session, "blockchain.scripthash.get_balance", sh(2)) == {
        "confirmed": 38, "unconfirmed": -33}
    # The confirmed output is spent in the mempool; the mempool output comes last.
    assert call(methods, session, "blockchain.scripthash.listunspent", sh(2)) == [
        {"tx_hash": hash_to_hex_str(MEMPOOL_TX_B), "tx_pos": 1, "height": 0, "value": 5}]


def test_balance_and_utxos_confirmed(node):
    methods = make_methods(node)
    session = FakeSession()
    assert call(methods, session, "blockchain.scripthash.get_balance", sh(6)) == {
        "confirmed": 100, "unconfirmed": 0}
    assert call(methods, session, "blockchain.scripthash.listunspent", sh(6)) == [
        {"tx_hash": txid_hex(node, h, 0), "tx_pos": 0, "height": h, "value": 50}
        for h in (3, 4)]
    assert call(methods, session, "blockchain.scripthash.get_mempool", sh(6)) == []
    assert session.cost > 0


def test_subscribe_status_matches_the_reader(node):
    add_mempool(node)
    methods = make_methods(node)
    session = FakeSession(version=(1, 4, 2))
    for n in (1, 2, 6):
        assert call(methods, session, "blockchain.scripthash.subscribe", sh(n)) == \
            node.reader.status(hx(n))
    assert call(methods, session, "blockchain.scripthash.subscribe", sh(99)) is None
    assert call(methods, session, "blockchain.scripthash.unsubscribe", sh(2)) is True
    assert call(methods, session, "blockchain.scripthash.unsubscribe", sh(2)) is False
    assert call(methods, session, "blockchain.scripthash.unsubscribe", sh(98)) is False


def test_history_too_large(node):
    # Room for 4 entries: a history of 4 or more is refused, as in ElectrumX.
    max_send = 100 + 99 * 4
    assert history_limit(max_send) == 4
    methods = make_methods(node, max_send=max_send)
    session = FakeSession()
    assert len(call(methods, session, "blockchain.scripthash.get_history", sh(2))) == 3
    for name in ("get_history", "subscribe"):
        with pytest.raises(RPCError) as caught:
            call(methods, session, f"blockchain.scripthash.{name}", sh(1))
        assert (caught.value.code, caught.value.message) == (HISTORY_TOO_LONG,
                                                             "history too large")
    assert methods.subscriptions.subscription_count == 0


@pytest.mark.parametrize("bad", [
    "", "00", sh(1)[:-2], sh(1) + "00", sh(1)[:-1] + "g", " " + sh(1)[1:],
    sh(1)[:30] + "  " + sh(1)[32:], None, 5, True, [sh(1)], {"scripthash": sh(1)},
])
@pytest.mark.parametrize("name", ["get_balance", "get_history", "get_mempool", "listunspent",
                                  "subscribe", "unsubscribe"])
def test_bad_script_hashes(node, name, bad):
    methods = make_methods(node)
    session = FakeSession()
    with pytest.raises(RPCError) as caught:
        call(methods, session, f"blockchain.scripthash.{name}", bad)
    assert caught.value.code == BAD_REQUEST
    assert session.subscription_state is None or not session.subscription_state.hashXs


def test_uppercase_script_hash_is_the_same_script(node):
    methods = make_methods(node)
    session = FakeSession()
    assert call(methods, session, "blockchain.scripthash.get_balance", sh(6).upper()) == {
        "confirmed": 100, "unconfirmed": 0}


def test_long_bad_values_are_cut_short_in_errors(node):
    with pytest.raises(RPCError) as caught:
        call(make_methods(node), FakeSession(), "blockchain.scripthash.get_balance", "z" * 10_000)
    assert len(caught.value.message) < 150


def test_settings_limits_apply_and_close_releases(node):
    methods = make_methods(node, max_session_subs=1)
    session = FakeSession()
    call(methods, session, "blockchain.scripthash.subscribe", sh(1))
    with pytest.raises(RPCError, match="per-session subscription limit 1"):
        call(methods, session, "blockchain.scripthash.subscribe", sh(2))
    methods.session_closed(session)
    assert methods.subscriptions.subscription_count == 0
    assert session.subscription_state is None
