"""The demo of `twistd electrumx --demo`: a chain paying a published Electrum wallet.

The demo chain pays the first receiving addresses of a fixed Electrum
"segwit" seed, printed at start with the `electrum` commands that restore it
and point it at this server alone.  So a real Electrum wallet shows a
history and a balance at once, sees new payments arrive in the mempool, and
can pay from it: the payment goes through our server to the built-in node
and is mined by the demo's next block.  The seed is public: it is a demo.

After each block the demo adds a few payments of its own to the mempool,
one of them to the wallet.  It spends only outputs it knows to be its own
(the generated chain's, and its payments' change), never the wallet's
coins nor anything else sent to the node: a real wallet's transaction never
finds its coins taken, and nothing it did not sign ever leaves it.

The node keeps the blocks it mines beside the index, so a demo run again
goes on where it stopped, wallets' payments still confirmed.
"""

import os
import random

from electrumx.chain.block import header_hash
from electrumx.chain.tx import parse_block_txs
from electrumx.coins import BitcoinRegtest
from electrumx.config.services import host_port
from electrumx.logs import Logger
from electrumx.private_files import (PRIVATE_FILE_MODE, make_private_directory,
                                     write_private_file)
from electrumx.regtest import txmaker
from electrumx.regtest.cache import block_record, load_or_generate, read_blocks
from electrumx.regtest.chainblocks import ChainBlocks
from electrumx.regtest.node import NodeError, RegtestNode
from electrumx.regtest.service import RegtestNodeService
from electrumx.regtest.workload import WorkloadParams

log = Logger()

WALLET_SEED = "seed ability dice garment cup crystal identify milk gallery physical lobster diagram"
"""An Electrum 4 "segwit" seed (made once by `electrum create --seed_type segwit`).
Published in the README: never send it real coins."""

WALLET_ADDRESSES = (
    "bcrt1qn7ez0slrpcvsvz96592fne9kkujctpdn0rw0z0",
    "bcrt1qsfe2m56r5h5ynkqyfqf238tzlg7g6y36r0drk3",
    "bcrt1qcd0ck0t463cakvvwcch6jq62rqvxkhr4aahwxp",
    "bcrt1qzq29syystww9y7flhlnu9slm5c84jdcugl0zyc",
    "bcrt1qdettc6x772t0dnyrst0sesggj6n8cxmytjysv6",
    "bcrt1qfupc3cz8l97dgnc7deyd8km0322jd0xurtjagc",
    "bcrt1qkr2kvlzfm4g8ttwxwdtmylyp8f6eppgzwrnx5q",
    "bcrt1qpyyspmnl6lfc8emzkzrzhtkdmpsp5apg8zuqgf",
    "bcrt1qyrwlsynm26clyx9qyp25ycjjkp7uhw4pksurqu",
    "bcrt1qmj4mcvpa2eusm9n6ky7u75asqltr4mz6z9feze",
)
"""The seed's first ten receiving addresses (BIP32 m/0'/0/i, P2WPKH, regtest), as
Electrum 4.3.4 lists them (tests/wallet checks it).  Well within Electrum's gap
limit of 20, so a restored wallet finds every payment."""

WALLET_SCRIPTS = tuple(BitcoinRegtest.address_to_script(a) for a in WALLET_ADDRESSES)

CHAIN_SIZE = "small"
PAYMENTS_PER_BLOCK = 4
"""Payments the demo adds to the mempool at start and after each block, one to the wallet."""
WALLET_PAYMENT_RANGE = (1_000_000, 50_000_000)
"""What each payment to the wallet is worth, in satoshis (0.01 to 0.5 BTC), unless its
coin is worth less than twice that."""
MIN_SPENT_VALUE = 100_000
"""The demo spends no output worth less: far more than any fee it pays (34 sat/vB for
a transaction of about 200 vB)."""
PAY_ATTEMPTS = 10
PAYMENTS_SEED = 0
BLOCKS_FILE = "demo-node-blocks"
"""In DB_DIRECTORY: the blocks the demo's node mined (see KeptBlocks)."""

OUTSIDE_ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
"""Where the printed `payto` sends (BIP173's P2WPKH example, in regtest form)."""
PAYMENT_AMOUNT = "0.5"


def wallet_commands(server: str) -> list:
    """The `electrum` commands that restore the demo wallet and use it through `server`
    (Electrum's host:port:t) only: printed at start and repeated in the README."""
    electrum = "electrum --regtest"
    return [
        f'{electrum} --offline restore "{WALLET_SEED}"',
        f"{electrum} daemon -d --oneserver --server {server}",
        f"{electrum} load_wallet",
        f"{electrum} getbalance",
        f"{electrum} onchain_history",
        f"{electrum} payto {OUTSIDE_ADDRESS} {PAYMENT_AMOUNT} | {electrum} broadcast -",
        f"{electrum} stop",
    ]


def electrum_server(services):
    """Electrum's `host:port:t` for our first TCP service (Electrum speaks TCP and TLS,
    and our TLS certificate may be one it does not trust), or None without one."""
    for service in services:
        if service.protocol == "tcp":
            host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(service.host,
                                                                             service.host)
            return f"{host_port(host, service.port)}:t"
    return None


def wallet_instructions(server: str) -> str:
    """The seed and the commands for `server`, as the demo prints them at start."""
    commands = "\n".join(f"    {command}" for command in wallet_commands(server))
    return (f"demo wallet: the chain pays this published Electrum seed (never send it real "
            f"coins):\n    {WALLET_SEED}\nrestore it and use it through this server only "
            f"(give it a few seconds after load_wallet to synchronise):\n{commands}")


def log_wallet_instructions(services):
    """Log the wallet instructions as one event: twistd indents its lines after the first
    and stamps none of them, so the commands can be copied as they are."""
    server = electrum_server(services)
    if server is None:
        log.warn("demo: SERVICES has no tcp service, which Electrum needs to reach the demo")
        return
    log.info("{instructions}", instructions=wallet_instructions(server))


class DemoPayments:
    """The payments the demo keeps adding to the node's mempool.

    It keeps the outputs it may spend: at start the node's unspent outputs
    but the wallet's and those of transactions it did not make (see
    `foreign_txids`), then its own payments' change.  The node checks no
    signature, so anyone could spend those too: an output spent meanwhile is
    dropped, never replaced by a payment of ours.
    """

    def __init__(self, node, rng, generated_height, wallet_scripts=WALLET_SCRIPTS):
        self.node = node
        self.rng = rng
        self.wallet_scripts = tuple(wallet_scripts)
        self._wallet_script_set = frozenset(wallet_scripts)
        foreign = foreign_txids(node, generated_height, self._wallet_script_set)
        self.spendable = [coin for coin in node.unspent_outputs()
                          if self._ours(coin) and coin[0][:32] not in foreign]

    def _ours(self, coin) -> bool:
        _outpoint, value, script = coin
        return value >= MIN_SPENT_VALUE and script not in self._wallet_script_set

    def add(self, count=PAYMENTS_PER_BLOCK) -> list:
        """Send `count` payments (the first to one of the wallet's addresses); their txids."""
        txids = []
        for n in range(count):
            txid = self._send(to_wallet=n == 0)
            if txid is None:
                break
            txids.append(txid)
        return txids

    def _send(self, to_wallet):
        rng = self.rng
        for _ in range(PAY_ATTEMPTS):
            if not self.spendable:
                return None
            coin = self.spendable.pop(rng.randrange(len(self.spendable)))
            if coin[0] in self.node.mempool.spenders:
                continue            # spent by someone else, still unconfirmed
            # At most half the coin, so that it always pays the wallet and the fee.
            pay = (rng.choice(self.wallet_scripts),
                   min(rng.randint(*WALLET_PAYMENT_RANGE), coin[1] // 2)) if to_wallet else None
            try:
                tx = txmaker.payment([coin], rng, outputs=1 if to_wallet else None, pay=pay)
                txid = self.node.send(tx.serialize())
            except (ValueError, NodeError):
                continue            # too small, or spent by someone else: forget it
            self.spendable.extend(
                coin for coin in ((txid + idx.to_bytes(4, "little"), out.value, out.script)
                                  for idx, out in enumerate(tx.outputs)) if self._ours(coin))
            return txid
        return None


def foreign_txids(node, generated_height, wallet_scripts) -> set:
    """The transactions the demo did not make, in the blocks its node mined after the
    generated chain: those spending a wallet's coin (its payments) or an output of another
    such transaction.  Their outputs (a wallet's change among them) are not the demo's."""
    wallet_coins, foreign = set(), set()
    for height in range(1, node.height + 1):
        for txid, prevouts, outputs in parse_block_txs(node.blocks[height]):
            if height > generated_height and any(p in wallet_coins or p[:32] in foreign
                                                 for p in prevouts):
                foreign.add(txid)
            wallet_coins.update(txid + idx.to_bytes(4, "little")
                                for idx, (_value, script) in enumerate(outputs)
                                if script in wallet_scripts)
    return foreign


class KeptBlocks:
    """The blocks the demo's node mined, kept in a file of block records so that the demo
    run again goes on from them, as bitcoind from its blocks directory: the index it kept
    is the node's chain still, and wallets' payments stay confirmed.  Only the mempool
    starts afresh (and the demo refills it).

    A block is appended as soon as it is mined, before the index can fetch it,
    so the file is never behind the index, but for a crash of the machine
    itself (it is not fsynced): then the server waits for the node, as for
    any node restarted behind it.  A record cut short is left out.
    """

    def __init__(self, path: str):
        self.path = path
        """None once a file error stopped the keeping: the demo goes on without."""
        self.height = None          # of the last block in the file, once loaded

    def load(self, generated: list) -> list:
        """The kept blocks that follow the `generated` chain one by one.

        Blocks that do not follow it (the file of another generated chain, say
        after an upgrade changed it) are dropped from the file.
        """
        self.height = len(generated) - 1
        try:
            with open(self.path, "rb") as f:
                kept = read_blocks(f)
        except (FileNotFoundError, NotADirectoryError):
            return []                   # (the index tells of a DB_DIRECTORY it cannot use)
        except OSError as e:
            self._give_up(e)
            return []
        tip, chain = header_hash(generated[-1]), []
        for raw in kept:
            if raw[4:36] != tip:
                break
            chain.append(raw)
            tip = header_hash(raw)
        if len(chain) < len(kept):
            log.warn("demo: {dropped} kept blocks do not follow the chain, dropped",
                     dropped=len(kept) - len(chain))
            try:
                write_private_file(self.path, b"".join(map(block_record, chain)))
            except OSError as e:
                self._give_up(e)
        self.height += len(chain)
        return chain

    def keep(self, node):
        """Append the node's blocks above the last kept one."""
        new = node.blocks[self.height + 1:node.height + 1]
        if not new or self.path is None:
            return
        try:
            make_private_directory(os.path.dirname(os.path.abspath(self.path)))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "ab") as f:
                f.write(b"".join(map(block_record, new)))
        except OSError as e:
            self._give_up(e)
            return
        self.height = node.height

    def _give_up(self, error):
        log.warn("demo: the node's blocks are not kept ({error}): a demo run again starts "
                 "from the generated chain", error=error)
        self.path = None


def demo_chain(cache_dir=None):
    """The demo's generated chain, which pays the wallet (a GeneratedChain)."""
    params = WorkloadParams.preset(CHAIN_SIZE, extra_payees=WALLET_SCRIPTS)
    return load_or_generate(params, cache_dir, log)


def demo_node_service(reactor, block_interval, on_listening, password, blocks_path):
    """The demo's node as a service: the generated chain paying the wallet and the blocks
    kept in `blocks_path`, a new block every `block_interval` seconds, kept too, and the
    mempool refilled at start and after each block.

    Its payments are drawn from a fixed seed: a demo started afresh makes
    the same blocks every time.
    """
    generated = demo_chain().blocks
    kept = KeptBlocks(blocks_path)
    node = RegtestNode(ChainBlocks(generated, kept.load(generated)), None, reactor)
    payments = DemoPayments(node, random.Random(PAYMENTS_SEED), len(generated) - 1)
    payments.add()

    def after_block():
        kept.keep(node)
        payments.add()

    return RegtestNodeService(reactor, node, "127.0.0.1", 0, "demo", password,
                              on_listening=on_listening, reveal_interval=block_interval,
                              after_block=after_block)
