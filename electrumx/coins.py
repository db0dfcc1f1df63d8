"""The coins and networks the server knows.

A coin is one class of constants plus the few functions that differ between
chains.  Adding a coin means adding one class here: it is found by its
`NAME` and `NET` through `lookup_coin`.
"""

from electrumx.chain import address as _address
from electrumx.chain.hashes import hashX_from_script, hex_str_to_hash
from electrumx.chain.script import is_unspendable
from electrumx.chain.tx import (HEADER_LEN, MWEB_FLAG, SEGWIT_FLAGS, Tx,
                                parse_block_txs)


class CoinError(ValueError):
    """An unknown coin or network."""


class Coin:
    """Constants and chain rules shared by Bitcoin-like coins.

    Subclasses set at least NAME, NET, GENESIS_HASH, the address versions and
    the ports; everything else has a Bitcoin-like default.
    """

    NAME = ""
    SHORTNAME = ""
    NET = ""
    DAEMON_CHAIN = ""
    """The `chain` that the node's getblockchaininfo reports for this network."""
    GENESIS_HASH = ""
    """The genesis block hash in display hex."""
    P2PKH_VERBYTE = 0x00
    P2SH_VERBYTES = (0x05,)
    """Accepted P2SH version bytes; the first one is used to show addresses."""
    SEGWIT_HRP = ""
    """The bech32 human-readable part, or "" for coins without segwit."""
    TX_FLAGS = SEGWIT_FLAGS
    """Serialisation flag bits this coin's transactions may carry."""
    HEADER_LEN = HEADER_LEN
    RPC_PORT = 8332
    DATA_DIR = ".bitcoin"
    """The node's data directory under its user's home, where it keeps its RPC cookie..."""
    DATA_SUBDIR = ""
    """...in this subdirectory of it for the network ("" on mainnet)."""
    TCP_PORT = 50001
    SSL_PORT = 50002
    REORG_LIMIT = 200
    PEERS = ()
    """Seed peers, each "host" followed by port tags as in server.peers.subscribe."""
    IRC_PREFIX = "E_"
    """Start of the IRC nicks of this coin's servers (so each coin and net has its own)."""
    DEFAULT_MAX_SEND = 8_000_000
    MEMPOOL_HISTOGRAM_REFRESH_SECS = 120
    MEMPOOL_HISTOGRAM_BIN_SIZE = 30_000
    BLACKLIST_URL = None
    DEFAULT_RELAY_FEE = 0.00001
    """Minimum relay fee in coin/kvB, used when the node does not say."""
    COIN_UNITS = 100_000_000
    """Smallest units in one coin."""

    # Chain rules as functions, so a coin can override one without the rest.

    @classmethod
    def genesis_hash(cls) -> bytes:
        """The internal-order genesis block hash."""
        return hex_str_to_hash(cls.GENESIS_HASH)

    @classmethod
    def parse_block_txs(cls, raw_block: bytes):
        """The indexer's view of a raw block: [(txid, prevouts, outputs), ...]."""
        return parse_block_txs(raw_block, cls.HEADER_LEN, cls.TX_FLAGS)

    @classmethod
    def deserialize_tx(cls, raw_tx: bytes) -> Tx:
        """A complete transaction object from its raw bytes."""
        return Tx.from_bytes(raw_tx, allowed_flags=cls.TX_FLAGS)

    hashX_from_script = staticmethod(hashX_from_script)
    is_unspendable = staticmethod(is_unspendable)

    @classmethod
    def address_to_script(cls, address: str) -> bytes:
        return _address.address_to_script(cls, address)

    @classmethod
    def script_to_address(cls, script: bytes):
        return _address.script_to_address(cls, script)

    @classmethod
    def address_to_hashX(cls, address: str) -> bytes:
        return hashX_from_script(cls.address_to_script(address))

    @staticmethod
    def bucket_estimatefee_block_target(n: int) -> int:
        """Round a fee target to the ones bitcoind estimates separately.

        bitcoind's answers only change at these targets, so caching by bucket
        answers everybody from fewer node calls.
        """
        if n <= 1:
            return 1
        if n <= 12:
            return n
        if n <= 25:
            return 25
        if n <= 48:
            return n + (n & 1)
        if n <= 1008:
            return min(1008, -(-n // 24) * 24)
        return 1008


class Bitcoin(Coin):
    NAME = "Bitcoin"
    SHORTNAME = "BTC"
    NET = "mainnet"
    DAEMON_CHAIN = "main"
    GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    SEGWIT_HRP = "bc"
    BLACKLIST_URL = "https://electrum.org/blacklist.json"
    PEERS = (
        "electrum.blockstream.info s t",
        "electrum.emzy.de s t",
        "electrum.bitaroo.net s t",
        "fortress.qtornado.com s443 t",
        "electrumx.erbium.eu s t",
        "electrum.jochen-hoenicke.de s50005 t50003",
    )


class BitcoinTestnet(Bitcoin):
    NET = "testnet"
    DATA_SUBDIR = "testnet3"
    SHORTNAME = "XTN"
    DAEMON_CHAIN = "test"
    GENESIS_HASH = "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943"
    P2PKH_VERBYTE = 0x6F
    P2SH_VERBYTES = (0xC4,)
    SEGWIT_HRP = "tb"
    RPC_PORT = 18332
    TCP_PORT = 51001
    SSL_PORT = 51002
    REORG_LIMIT = 8000
    BLACKLIST_URL = None
    IRC_PREFIX = "ET_"
    PEERS = (
        "testnet.aranguren.org t51001 s51002",
        "blockstream.info t143 s993",
        "testnet.qtornado.com s51002 t51001",
    )


class BitcoinTestnet4(BitcoinTestnet):
    NET = "testnet4"
    DATA_SUBDIR = "testnet4"
    DAEMON_CHAIN = "testnet4"
    GENESIS_HASH = "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043"
    RPC_PORT = 48332
    IRC_PREFIX = "ET4_"
    PEERS = ("blackie.c3-soft.com s57010 t57009",)


class BitcoinSignet(BitcoinTestnet):
    NET = "signet"
    DATA_SUBDIR = "signet"
    DAEMON_CHAIN = "signet"
    GENESIS_HASH = "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6"
    RPC_PORT = 38332
    IRC_PREFIX = "ES_"
    PEERS = ()


class BitcoinRegtest(BitcoinTestnet):
    NET = "regtest"
    DATA_SUBDIR = "regtest"
    DAEMON_CHAIN = "regtest"
    GENESIS_HASH = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    SEGWIT_HRP = "bcrt"
    RPC_PORT = 18443
    IRC_PREFIX = "ER_"
    PEERS = ()


class Litecoin(Coin):
    NAME = "Litecoin"
    SHORTNAME = "LTC"
    NET = "mainnet"
    DATA_DIR = ".litecoin"
    DAEMON_CHAIN = "main"
    GENESIS_HASH = "12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2"
    P2PKH_VERBYTE = 0x30
    P2SH_VERBYTES = (0x32, 0x05)
    SEGWIT_HRP = "ltc"
    TX_FLAGS = SEGWIT_FLAGS | MWEB_FLAG
    RPC_PORT = 9332
    REORG_LIMIT = 800
    DEFAULT_RELAY_FEE = 0.0001
    IRC_PREFIX = "EL_"
    PEERS = (
        "electrum-ltc.bysh.me s t",
        "electrum.ltc.xurious.com s t",
        "ltc.rentonisk.com s t",
    )


class LitecoinTestnet(Litecoin):
    NET = "testnet"
    DATA_SUBDIR = "testnet4"
    SHORTNAME = "XLT"
    DAEMON_CHAIN = "test"
    GENESIS_HASH = "4966625a4b2851d9fdee139e56211a0d88575f59ed816ff5e6a63deb4e3e29a0"
    P2PKH_VERBYTE = 0x6F
    P2SH_VERBYTES = (0x3A, 0xC4)
    SEGWIT_HRP = "tltc"
    RPC_PORT = 19332
    TCP_PORT = 51001
    SSL_PORT = 51002
    REORG_LIMIT = 4000
    IRC_PREFIX = "ELT_"
    PEERS = ("electrum-ltc.bysh.me t51001 s51002",)


def _bsv_is_unspendable(script: bytes) -> bool:
    """Bitcoin SV: only OP_FALSE OP_RETURN outputs can never be spent.

    Since the Genesis upgrade a script that starts with OP_RETURN can be
    spent, and scripts may be larger than 10,000 bytes, so neither may be
    left out of the index: a later block spending one would find no UTXO.
    Before Genesis such outputs were unspendable; indexing them costs a
    little space and never a wrong answer.
    """
    return script[:2] == b"\x00\x6a"


class BitcoinSV(Coin):
    """Bitcoin SV: Bitcoin's addresses and genesis, no segwit, its own unspendable rule."""

    NAME = "BitcoinSV"
    SHORTNAME = "BSV"
    NET = "mainnet"
    DAEMON_CHAIN = "main"
    GENESIS_HASH = Bitcoin.GENESIS_HASH
    TX_FLAGS = 0
    GENESIS_ACTIVATION = 620_538
    """The height of the Genesis upgrade (unbounded scripts, spendable OP_RETURN)."""
    is_unspendable = staticmethod(_bsv_is_unspendable)
    PEERS = (
        "satoshi.vision.cash s",
        "sv.usebsv.com s t",
        "sv.satoshi.io s t",
        "sv2.satoshi.io s t",
    )


class BitcoinSVTestnet(BitcoinSV):
    NET = "testnet"
    DATA_SUBDIR = "testnet3"
    SHORTNAME = "XTN"
    DAEMON_CHAIN = "test"
    GENESIS_HASH = BitcoinTestnet.GENESIS_HASH
    P2PKH_VERBYTE = 0x6F
    P2SH_VERBYTES = (0xC4,)
    RPC_PORT = 18332
    TCP_PORT = 51001
    SSL_PORT = 51002
    REORG_LIMIT = 8000
    GENESIS_ACTIVATION = 1_344_302
    PEERS = ()


class BitcoinSVRegtest(BitcoinSVTestnet):
    """Bitcoin SV's regtest: its node still answers RPC on 18332 (Bitcoin Core moved to 18443)."""

    NET = "regtest"
    DATA_SUBDIR = "regtest"
    DAEMON_CHAIN = "regtest"
    GENESIS_HASH = BitcoinRegtest.GENESIS_HASH
    GENESIS_ACTIVATION = 10_000


def all_coins():
    """Every concrete coin class, found by walking the subclasses of Coin."""
    found, todo = [], [Coin]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.NAME and sub.NET:
                found.append(sub)
    return found


def lookup_coin(name: str, net: str = "mainnet"):
    """The coin class called `name` (case-insensitive) on network `net`.

    Raises CoinError naming what is known when there is no such coin.
    """
    coins = all_coins()
    matches = [c for c in coins if c.NAME.lower() == (name or "").lower()]
    if not matches:
        known = ", ".join(sorted({c.NAME for c in coins}))
        raise CoinError(f"unknown coin {name!r}; known coins: {known}")
    for cls in matches:
        if cls.NET.lower() == (net or "").lower():
            return cls
    nets = ", ".join(sorted(c.NET for c in matches))
    raise CoinError(f"unknown network {net!r} for {matches[0].NAME}; known: {nets}")
