"""Header methods against real indexes, with the spec's golden checkpoint proof."""

import pytest

from electrumx.chain.block import header_hash
from electrumx.chain.hashes import hex_str_to_hash
from electrumx.chain.merkle import root_from_branch
from electrumx.chain.tx import pack_varint
from electrumx.coins import Bitcoin
from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.methods.headers import MAX_CHUNK_SIZE
from tests.fixtures.blocks import ChainBuilder, coinbase, script_for
from tests.protocol.test_methods_support import FakeSession, Node, make_methods
from tests.protocol.test_methods_support import node  # noqa: F401  (a fixture)

# Bitcoin mainnet headers 0..8 (public chain data): the spec's examples use them.
MAINNET_HEADERS = [bytes.fromhex(h) for h in (
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b2"
    "7ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c",
    "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744"
    "bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299",
    "010000004860eb18bf1b1620e37e9490fc8a427514416fd75159ab86688e9a8300000000d5fdcc541e25de1c"
    "7a5addedf24858b8bb665c9f36ef744ee42c316022c90f9bb0bc6649ffff001d08d2bd61",
    "01000000bddd99ccfda39da1b108ce1a5d70038d0a967bacb68b6b63065f626a0000000044f672226090d85d"
    "b9a9f2fbfe5f0f9609b387af7be5b7fbb7a1767c831c9e995dbe6649ffff001d05e0ed6d",
    "010000004944469562ae1c2c74d9a535e00b6f3e40ffbad4f2fda3895501b582000000007a06ea98cd40ba2e"
    "3288262b28638cec5337c1456aaf5eedc8e9e5a20f062bdf8cc16649ffff001d2bfee0a9",
    "0100000085144a84488ea88d221c8bd6c059da090e88f8a2c99690ee55dbba4e00000000e11c48fecdd9e725"
    "10ca84f023370c9a38bf91ac5cae88019bee94d24528526344c36649ffff001d1d03e477",
    "01000000fc33f596f822a0a1951ffdbf2a897b095636ad871707bf5d3162729b00000000379dfb96a5ea8c81"
    "700ea4ac6b97ae9a9312b2d4301a29580e924ee6761a2520adc46649ffff001d189c4c97",
    "010000008d778fdc15a2d3fb76b7122a3b5582bea4f21f5a0c693537e7a03130000000003f674005103b42f9"
    "84169c7d008370967e91920a6a5d64fd51282f75bc73a68af1c66649ffff001d39a59c86",
    "010000004494c8cf4154bdcc0720cd4a59d9c9b285e4b146d45f061d2b6c967100000000e3855ed886605b6d"
    "4a99d5fa2ef2e9b0b164e63df3c4136bebf2d0dac0f1f7a667c86649ffff001d1c4b5666",
)]

# EP:docs/protocol-methods.rst, blockchain.block.header with height 5 and cp_height 8.
SPEC_CP8_PROOF = {
    "branch": [
        "000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485",
        "96cbbc84783888e4cc971ae8acf86dd3c1a419370336bb3c634c97695a8c5ac9",
        "965ac94082cebbcffe458075651e9cc33ce703ab0115c72d9e8b1a9906b2b636",
        "89e5daa6950b895190716dd26054432b564ccdc2868188ba1da76de8e1dc7591",
    ],
    "header": MAINNET_HEADERS[5].hex(),
    "root": "e347b1c43fd9b5415bf0d92708db8284b78daf4d0e24f9c3405f45feb85e25db",
}


@pytest.fixture
def mainnet(tmp_path):
    """An index of mainnet's first nine headers (their blocks' bodies are stand-ins:
    the index keeps headers as given and does not check merkle roots)."""
    node = Node(tmp_path, coin=Bitcoin)
    node.add_blocks(header + pack_varint(1) + coinbase(n, [(50, script_for(n))]).serialize()
                    for n, header in enumerate(MAINNET_HEADERS))
    yield node
    node.close()


def call(methods, session, name, *args):
    return methods.handler(session, name)(session, *args)


def test_spec_golden_header_and_checkpoint_proof(mainnet):
    methods = make_methods(mainnet, coin=Bitcoin)
    session = FakeSession(version=(1, 4))
    assert call(methods, session, "blockchain.block.header", 5) == MAINNET_HEADERS[5].hex()
    assert call(methods, session, "blockchain.block.header", 5, 8) == SPEC_CP8_PROOF
    assert session.cost == pytest.approx(0.25 + 1.25)


def test_spec_golden_headers_chunk(mainnet):
    methods = make_methods(mainnet, coin=Bitcoin)
    two = MAINNET_HEADERS[0].hex() + MAINNET_HEADERS[1].hex()
    old = call(methods, FakeSession(version=(1, 4)), "blockchain.block.headers", 0, 2)
    assert old == {"count": 2, "hex": two, "max": 2016}
    new = call(methods, FakeSession(version=(1, 6)), "blockchain.block.headers", 0, 2)
    assert new == {"count": 2, "headers": [h.hex() for h in MAINNET_HEADERS[:2]],
                   "max": 2016}
    # A chunk ending at height 5 carries the same proof as the single header.
    proved = call(methods, FakeSession(version=(1, 6)), "blockchain.block.headers", 3, 3, 8)
    assert (proved["branch"], proved["root"]) == (SPEC_CP8_PROOF["branch"],
                                                  SPEC_CP8_PROOF["root"])
    assert proved["headers"] == [h.hex() for h in MAINNET_HEADERS[3:6]]


def test_every_proof_checks_against_its_root(node):
    methods = make_methods(node)
    session = FakeSession()
    hashes = [header_hash(raw[:80]) for raw in node.chain.blocks]
    for cp_height in range(1, len(hashes)):
        for height in range(cp_height + 1):
            proof = call(methods, session, "blockchain.block.header", height, cp_height)
            branch = [hex_str_to_hash(h) for h in proof["branch"]]
            root = root_from_branch(hashes[height], height, branch)
            assert root == hex_str_to_hash(proof["root"])


def test_chunks_stop_at_the_tip_and_without_proof_when_empty(node):
    methods = make_methods(node)
    session = FakeSession(version=(1, 6))
    result = call(methods, session, "blockchain.block.headers", 4, 100)
    assert result["count"] == 2 and len(result["headers"]) == 2
    assert call(methods, session, "blockchain.block.headers", 9, 5, 5) == {
        "count": 0, "headers": [], "max": MAX_CHUNK_SIZE}
    assert call(methods, session, "blockchain.block.headers", 2, 0, 5) == {
        "count": 0, "headers": [], "max": MAX_CHUNK_SIZE}
    old = call(methods, FakeSession(version=(1, 4, 2)), "blockchain.block.headers", 9, 5)
    assert old == {"count": 0, "hex": "", "max": MAX_CHUNK_SIZE}


def test_chunks_are_capped_at_2016(tmp_path):
    chain = ChainBuilder()
    for n in range(MAX_CHUNK_SIZE + 5):
        chain.add_block([coinbase(n, [(1, script_for(1))])])
    node = Node(tmp_path)
    try:
        node.add_blocks(chain.blocks)
        methods = make_methods(node)
        session = FakeSession(version=(1, 6))
        result = call(methods, session, "blockchain.block.headers", 1, 5000, 2020)
        assert result["count"] == MAX_CHUNK_SIZE == len(result["headers"])
        assert result["headers"][-1] == chain.blocks[MAX_CHUNK_SIZE][:80].hex()
        last = header_hash(chain.blocks[MAX_CHUNK_SIZE][:80])
        root = root_from_branch(last, MAX_CHUNK_SIZE,
                                [hex_str_to_hash(h) for h in result["branch"]])
        assert root == hex_str_to_hash(result["root"])
        assert session.cost == pytest.approx(MAX_CHUNK_SIZE / 50 + 1)
    finally:
        node.close()


@pytest.mark.parametrize("args", [
    (6,), (-1,), (True,), ("1",), (1.0,), (None,),      # height
    (3, 2), (3, 6), (0, -1), (0, False),                  # cp_height
])
def test_block_header_refuses_bad_params(node, args):
    with pytest.raises(RPCError) as caught:
        call(make_methods(node), FakeSession(), "blockchain.block.header", *args)
    assert caught.value.code == BAD_REQUEST


@pytest.mark.parametrize("args", [
    (-1, 1), (0, -1), (0, "2"), (False, 1), (0, 1, -3), (3, 3, 4), (0, 2, 99)])
def test_block_headers_refuses_bad_params(node, args):
    with pytest.raises(RPCError) as caught:
        call(make_methods(node), FakeSession(), "blockchain.block.headers", *args)
    assert caught.value.code == BAD_REQUEST


def test_headers_subscribe_returns_the_tip(node):
    session = FakeSession()
    result = call(make_methods(node), session, "blockchain.headers.subscribe")
    assert result == {"hex": node.chain.blocks[-1][:80].hex(), "height": 5}
    assert session.subscription_state.headers is True
