"""blockchain.transaction.*: broadcast, packages, fetches, and merkle proofs on real blocks."""

import pytest
from twisted.internet import defer

from electrumx.chain.block import Header
from electrumx.chain.hashes import hex_str_to_hash
from electrumx.chain.merkle import branch_and_root, root_from_branch
from electrumx.coins import Bitcoin
from electrumx.protocol.errors import BAD_REQUEST, DAEMON_ERROR, RPCError
from tests.conftest import load_testdata
from tests.protocol.test_methods_support import (DaemonError, FakeSession, Node, make_methods,
                                                 resolve)
from tests.protocol.test_methods_support import node  # noqa: F401  (a fixture)

RAW_TX = "0200000001" + "ab" * 40


def call(methods, session, name, *args):
    return resolve(methods.handler(session, name)(session, *args))


def check_error(code, methods, session, name, *args):
    with pytest.raises(RPCError) as caught:
        call(methods, session, name, *args)
    assert caught.value.code == code
    return caught.value.message


def test_broadcast(node):
    methods = make_methods(node)
    session = FakeSession()
    assert call(methods, session, "blockchain.transaction.broadcast", RAW_TX) == "ab" * 32
    assert node.daemon.calls == [("broadcast", RAW_TX)]
    assert session.cost == pytest.approx(0.25 + len(RAW_TX) / 5000)


def test_broadcast_rejection_passes_the_reason_back(node):
    node.daemon.rejection = DaemonError(-26, "min relay fee not met, 100 < 141")
    message = check_error(BAD_REQUEST, make_methods(node), FakeSession(),
                          "blockchain.transaction.broadcast", RAW_TX)
    assert message == ("the transaction was rejected by network rules.\n\n"
                       f"min relay fee not met, 100 < 141\n[{RAW_TX}]")


@pytest.mark.parametrize("bad", ["", "abc", "zz", "0x00", None, 5, ["00"]])
def test_broadcast_refuses_non_hex(node, bad):
    check_error(BAD_REQUEST, make_methods(node), FakeSession(),
                "blockchain.transaction.broadcast", bad)
    assert node.daemon.calls == []


def test_broadcast_package(node):
    methods = make_methods(node)
    session = FakeSession(version=(1, 6))
    package = [RAW_TX, RAW_TX + "00"]
    assert call(methods, session, "blockchain.transaction.broadcast_package", package) == {
        "success": True}
    assert node.daemon.calls == [("submit_package", package)]
    node.daemon.package_result = {
        "package_msg": "transaction failed",
        "tx-results": {"w1": {"txid": "aa" * 32},
                       "w2": {"txid": "bb" * 32, "error": "bad-txns-inputs-missingorspent"}}}
    assert call(methods, session, "blockchain.transaction.broadcast_package", package) == {
        "success": False,
        "errors": [{"txid": "bb" * 32, "error": "bad-txns-inputs-missingorspent"}]}
    assert call(methods, session, "blockchain.transaction.broadcast_package", package,
                True) == node.daemon.package_result


def test_broadcast_package_rejection(node):
    node.daemon.rejection = DaemonError(-25, "package topology disallowed")
    message = check_error(BAD_REQUEST, make_methods(node), FakeSession(),
                          "blockchain.transaction.broadcast_package", [RAW_TX])
    assert message == ("the tx package was rejected by network rules.\n\n"
                       "package topology disallowed.")


@pytest.mark.parametrize("args", [([],), (RAW_TX,), ([RAW_TX, "zz"],), ([RAW_TX, 5],),
                                  ([RAW_TX], "yes"), ([RAW_TX], 1)])
def test_broadcast_package_refuses_bad_params(node, args):
    check_error(BAD_REQUEST, make_methods(node), FakeSession(),
                "blockchain.transaction.broadcast_package", *args)


def test_get_raw_and_verbose(node):
    tx = node.chain.txs[2][1]
    node.daemon.raw_txs[tx.txid_hex] = tx.serialize().hex()
    methods = make_methods(node)
    session = FakeSession()
    assert call(methods, session, "blockchain.transaction.get", tx.txid_hex) == \
        tx.serialize().hex()
    assert call(methods, session, "blockchain.transaction.get", tx.txid_hex, True)["txid"] == \
        tx.txid_hex
    message = check_error(DAEMON_ERROR, methods, session, "blockchain.transaction.get",
                          "cd" * 32)
    assert "No such mempool" in message


@pytest.mark.parametrize("args", [("ab" * 31,), ("zz" * 32,), (5,), ("ab" * 32, "true"),
                                  ("ab" * 32, 1)])
def test_get_refuses_bad_params(node, args):
    check_error(BAD_REQUEST, make_methods(node), FakeSession(), "blockchain.transaction.get",
                *args)


def test_get_merkle_and_id_from_pos_on_the_index(node):
    methods = make_methods(node)
    session = FakeSession()
    for height, txs in enumerate(node.chain.txs[1:], 1):
        root = Header(node.chain.blocks[height][:80]).merkle_root
        for pos, tx in enumerate(txs):
            proof = call(methods, session, "blockchain.transaction.get_merkle", tx.txid_hex,
                         height)
            assert (proof["block_height"], proof["pos"]) == (height, pos)
            branch = [hex_str_to_hash(h) for h in proof["merkle"]]
            assert root_from_branch(tx.txid, pos, branch) == root
            assert call(methods, session, "blockchain.transaction.id_from_pos", height,
                        pos) == tx.txid_hex
            assert call(methods, session, "blockchain.transaction.id_from_pos", height, pos,
                        True) == {"tx_hash": tx.txid_hex, "merkle": proof["merkle"]}


@pytest.mark.parametrize("name, args", [
    ("get_merkle", ("ab" * 32, 2)),          # not in that block
    ("get_merkle", (None, 2)),
    ("get_merkle", ("ab" * 32, -1)),
    ("get_merkle", ("ab" * 32, 6)),          # past the tip
    ("get_merkle", ("ab" * 32, "2")),
    ("id_from_pos", (2, 3)),                 # block 2 has 3 transactions
    ("id_from_pos", (6, 0)),
    ("id_from_pos", (-1, 0)),
    ("id_from_pos", (2, -1)),
    ("id_from_pos", (2, 0, "yes")),
    ("id_from_pos", (True, 0)),
])
def test_proof_methods_refuse_bad_params(node, name, args):
    check_error(BAD_REQUEST, make_methods(node), FakeSession(),
                f"blockchain.transaction.{name}", *args)


def test_spec_status_example_merkle_branches():
    """The get_merkle answers of EP:docs/protocol-basics.rst for regtest blocks 2472 and 2473
    (txid lists rebuilt from them: each branch starts with the sibling txid)."""
    def h(text):
        return hex_str_to_hash(text)
    block_2472 = [h("5a4ae2a3c22bd791622edb41bd007b39e1f3bcdc8371717c71dbcf630aa8ca6f"),
                  h("a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347")]
    assert branch_and_root(block_2472, 1)[0] == [block_2472[0]]
    block_2473 = [h("9b977e4cc0b2eb44cb5ea2adb30bf6eae892c9a838111031cb49c97d8ad57309"),
                  h("9c42f84b2fcdaff676ba25d9d4941741cc0d1a01cce0c23fdc4c0b2afa38431c"),
                  h("770f2d4371b3fabb902dd9a103e2dd005fcd3971181078fca4a2a1d6ff127b30")]
    assert branch_and_root(block_2473, 1)[0] == [
        block_2473[0], h("e7a2891bd8f96488681a596f619de4d88a22d3b08a8aee3b44bbdd913e3e3562")]
    assert branch_and_root(block_2473, 2)[0] == [
        block_2473[2], h("ee43317b1b79a9a6b101df711a26d12a88b1419f63db15161a9fdb587fabae63")]


REAL_BLOCKS = [(name, data) for name, data in load_testdata("blocks")
               if name.startswith("bitcoin_")]


@pytest.mark.parametrize("name, block", REAL_BLOCKS, ids=[n for n, _ in REAL_BLOCKS])
def test_get_merkle_on_real_blocks(tmp_path, name, block):
    """A real block indexed as a chain's first block: every proof reaches its merkle root."""
    node = Node(tmp_path, coin=Bitcoin)
    try:
        node.add_blocks([bytes.fromhex(block["block"])])
        methods = make_methods(node, coin=Bitcoin)
        session = FakeSession()
        root = hex_str_to_hash(block["merkleroot"])
        txids = block["tx"]
        for pos in sorted({0, len(txids) // 2, len(txids) - 1}):
            proof = call(methods, session, "blockchain.transaction.get_merkle", txids[pos], 0)
            assert proof["pos"] == pos
            branch = [hex_str_to_hash(x) for x in proof["merkle"]]
            assert root_from_branch(hex_str_to_hash(txids[pos]), pos, branch) == root
            assert call(methods, session, "blockchain.transaction.id_from_pos", 0, pos,
                        True)["merkle"] == proof["merkle"]
    finally:
        node.close()


def test_merkle_testdata_is_present():
    assert len(REAL_BLOCKS) >= 3


def test_transaction_get_passes_daemon_deferreds_through(node):
    pending = defer.Deferred()
    node.daemon.raw_transaction = lambda txid, verbose: pending
    result = defer.ensureDeferred(make_methods(node).handler(
        FakeSession(), "blockchain.transaction.get")(FakeSession(), "ab" * 32))
    assert not result.called
    pending.callback("00")
    assert result.result == "00"


def answering(node, outcome):
    """Make the reader's testmempoolaccept answer `outcome` (a result, or a DaemonError)."""
    calls = []

    def test_mempool_accept(raw_txs):
        calls.append(raw_txs)
        return defer.fail(outcome) if isinstance(outcome, Exception) else defer.succeed(outcome)
    node.reader.test_mempool_accept = test_mempool_accept
    return calls


def test_testmempoolaccept_shapes_the_nodes_answer(node):
    calls = answering(node, [
        {"txid": "aa" * 32, "wtxid": "bb" * 32, "allowed": True, "vsize": 141,
         "fees": {"base": 0.0001}},
        {"txid": "cc" * 32, "wtxid": "dd" * 32, "allowed": False,
         "reject-reason": "missing-inputs", "reject-details": "missing-inputs, details"},
        {"txid": "ee" * 32, "wtxid": "ff" * 32, "package-error": "package-not-sorted"}])
    session = FakeSession(version=(1, 7))
    answer = call(make_methods(node), session, "blockchain.transaction.testmempoolaccept",
                  [RAW_TX, RAW_TX, RAW_TX])
    assert answer == [
        {"txid": "aa" * 32, "wtxid": "bb" * 32, "allowed": True},
        {"txid": "cc" * 32, "wtxid": "dd" * 32, "allowed": False,
         "reason": "missing-inputs, details"},
        {"txid": "ee" * 32, "wtxid": "ff" * 32, "reason": "package-not-sorted"}]
    assert calls == [[RAW_TX] * 3]
    assert session.cost == pytest.approx(0.25 + 3 * len(RAW_TX) / 5000)


@pytest.mark.parametrize("error, code", [
    (DaemonError(-22, "TX decode failed"), BAD_REQUEST),
    (DaemonError(-8, "Array must contain between 1 and 25 transactions."), BAD_REQUEST),
    (DaemonError(-1, "node unavailable: connection refused"), DAEMON_ERROR),
    (DaemonError(-28, "Loading block index..."), DAEMON_ERROR),
    (DaemonError(-32601, "Method not found"), DAEMON_ERROR),
])
def test_testmempoolaccept_node_errors(node, error, code):
    answering(node, error)
    message = check_error(code, make_methods(node), FakeSession(version=(1, 7)),
                          "blockchain.transaction.testmempoolaccept", [RAW_TX])
    assert error.message in message


@pytest.mark.parametrize("answer", [None, {"txid": "aa"}, ["x"]])
def test_testmempoolaccept_garbage_from_the_node_is_a_daemon_error(node, answer):
    answering(node, answer)
    check_error(DAEMON_ERROR, make_methods(node), FakeSession(version=(1, 7)),
                "blockchain.transaction.testmempoolaccept", [RAW_TX])


def test_testmempoolaccept_asks_the_node_through_the_reader(node):
    answer = call(make_methods(node), FakeSession(version=(1, 7)),
                  "blockchain.transaction.testmempoolaccept", [RAW_TX, "ff00"])
    assert answer == [{"txid": "02" * 32, "wtxid": "02" * 32, "allowed": True},
                      {"txid": "ff" * 32, "wtxid": "ff" * 32, "allowed": True}]
    assert node.daemon.calls == [("test_mempool_accept", [RAW_TX, "ff00"])]
