"""Addresses and scripts of every coin, script hashes, and the merkle cache."""

import pytest

from electrumx.chain import script as S
from electrumx.chain.address import AddressError, segwit_decode, segwit_encode
from electrumx.chain.hashes import (hashX_from_script, hashX_from_scripthash,
                                    scripthash_from_script, sha256)
from electrumx.chain.merkle import MerkleCache, branch_and_root
from electrumx.coins import (Bitcoin, BitcoinRegtest, BitcoinSV, BitcoinSVRegtest,
                             BitcoinSVTestnet, BitcoinTestnet, CoinError, Litecoin, all_coins,
                             lookup_coin)

GENESIS_PUBKEY = bytes.fromhex(
    "04678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f3"
    "5504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5f")


@pytest.mark.parametrize("coin, address, kind", [
    (Bitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "p2pkh"),
    (Bitcoin, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "p2sh"),
    (Bitcoin, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "p2wpkh"),
    (Bitcoin, "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", "p2wsh"),
    (Bitcoin, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "p2tr"),
    (BitcoinTestnet, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "p2pkh"),
    (BitcoinTestnet, "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "p2sh"),
    (BitcoinTestnet, "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "p2wpkh"),
    (BitcoinRegtest, "bcrt1qn7d2x7272lznt5hhk9s07q3cqnrqljnwladrd3", "p2wpkh"),
    (Litecoin, "LM2WMpR1Rp6j3Sa59cMXMs1SPzj9eXpGc1", "p2pkh"),
    (Litecoin, "MQMcJhpWHYVeQArcZR3sBgyPZxxRtnH441", "p2sh"),
    (Litecoin, "ltc1qg42tkwuuxefutzxezdkdel39gfstuap288mfea", "p2wpkh"),
    (BitcoinSV, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "p2pkh"),
    (BitcoinSV, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "p2sh"),
    (BitcoinSVTestnet, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "p2pkh"),
    (BitcoinSVTestnet, "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "p2sh"),
    (BitcoinSVRegtest, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn", "p2pkh"),
])
def test_address_round_trips(coin, address, kind):
    script = coin.address_to_script(address)
    assert S.classify(script)[0] == kind
    assert coin.script_to_address(script) == address


@pytest.mark.parametrize("coin, address", [
    (Bitcoin, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb"),          # bad checksum
    (Bitcoin, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"),          # testnet address
    (BitcoinTestnet, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
    (Bitcoin, "bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),  # mixed case
    (Bitcoin, "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du"),       # bad padding / checksum
    (Bitcoin, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut"),  # bech32 v1
    (Bitcoin, ""),
    (Bitcoin, "0OIl"),
    (BitcoinSV, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),      # no segwit
    (BitcoinSVRegtest, "bcrt1qn7d2x7272lznt5hhk9s07q3cqnrqljnwladrd3"),
    (BitcoinSV, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"),              # a testnet address
    (BitcoinSVTestnet, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),
])
def test_invalid_addresses(coin, address):
    with pytest.raises(AddressError):
        coin.address_to_script(address)


def test_bech32_vectors_round_trip():
    for version, program in ((0, bytes(20)), (0, bytes(range(32))), (1, bytes(32)),
                             (16, b"\x75\x1e")):
        address = segwit_encode("bc", version, program)
        assert segwit_decode("bc", address) == (version, program)


def test_genesis_output_script_hashes():
    p2pk = S.p2pk_script(GENESIS_PUBKEY)
    assert hashX_from_script(p2pk) == sha256(p2pk)[:11]
    p2pkh = Bitcoin.address_to_script("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    scripthash = scripthash_from_script(p2pkh)
    assert scripthash == "8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161"
    assert hashX_from_scripthash(scripthash) == hashX_from_script(p2pkh)
    with pytest.raises(ValueError):
        hashX_from_scripthash("zz" * 32)


def test_unspendable_outputs():
    assert S.is_unspendable(S.null_data_script(b"hello"))
    assert S.is_unspendable(b"\x51" * 10_001)
    assert not S.is_unspendable(S.p2pkh_script(bytes(20)))


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_merkle_cache_agrees_with_the_naive_branch(depth):
    leaves = [sha256(i.to_bytes(4, "little")) for i in range(300)]
    cache = MerkleCache(lambda start, count: leaves[start:start + count], depth=depth)
    for length in list(range(1, 70)) + [127, 128, 129, 255, 256, 257, 300]:
        for index in {0, length // 3, length - 1}:
            assert cache.branch_and_root(length, index) == \
                branch_and_root(leaves[:length], index)
    cache.truncate(40)
    leaves[45] = b"\x00" * 32                   # a reorg changed a leaf past 40
    assert cache.branch_and_root(60, 50) == branch_and_root(leaves[:60], 50)


def test_coins_are_complete_and_found_by_name():
    for coin in [c for c in all_coins() if c.__module__ == "electrumx.coins"]:
        assert len(coin.GENESIS_HASH) == 64 and coin.DAEMON_CHAIN
        assert lookup_coin(coin.NAME.upper(), coin.NET) is coin
    with pytest.raises(CoinError, match="unknown coin"):
        lookup_coin("Dogecoin")
    with pytest.raises(CoinError, match="unknown network"):
        lookup_coin("Litecoin", "signet")


def test_estimatefee_buckets():
    bucket = Bitcoin.bucket_estimatefee_block_target
    assert [bucket(n) for n in (0, 1, 2, 12, 13, 25, 27, 48, 49, 145, 2000)] == \
        [1, 1, 2, 12, 25, 25, 28, 48, 72, 168, 1008]
