"""The demo's chain and traffic: it pays the published wallet, keeps the mempool busy,
mines what wallets send by its next block, never spends what is not its own, and keeps
its blocks for the next run.

The node is the real built-in one, on the demo's real generated chain; the
service runs on a MemoryReactorClock only so that its blocks come when the
test advances the clock.  tests/wallet drives all of it with a real Electrum.
"""

import random

import pytest
from twisted.internet.testing import MemoryReactorClock

from electrumx.chain.hashes import scripthash_from_script
from electrumx.chain.tx import deserialize_block_txs
from electrumx.config.services import parse_services
from electrumx.regtest import demo, txmaker
from electrumx.regtest.cache import block_record
from electrumx.regtest.demo import (BLOCKS_FILE, PAYMENTS_PER_BLOCK, WALLET_PAYMENT_RANGE,
                                    WALLET_SCRIPTS, WALLET_SEED, DemoPayments, demo_chain,
                                    demo_node_service, electrum_server, wallet_commands,
                                    wallet_instructions)
from electrumx.regtest.node import RegtestNode

INTERVAL = 30.0


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The demo's chain cache, in the test's directory (the demo finds it by XDG_CACHE_HOME)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return str(tmp_path / "txelectrumx" / "regtest")


def running_demo(directory):
    """The demo's node service, keeping its blocks in `directory`, started on a clock;
    (service, clock, node)."""
    clock = MemoryReactorClock()
    service = demo_node_service(clock, INTERVAL, None, "password", str(directory / BLOCKS_FILE))
    service.startService()
    return service, clock, service.running_node.node


def wallet_payment(node, coin):
    """What a wallet broadcasts: its coin to someone, the change to an address of its own
    the demo does not know (a change address)."""
    tx = txmaker.payment([coin], random.Random(1), outputs=1,
                         pay=(WALLET_SCRIPTS[3], 10_000))
    node.send(tx.serialize())
    return tx


def wallet_coin(node):
    return next((o, v, s) for o, v, s in node.unspent_outputs() if s in WALLET_SCRIPTS)


def wallet_outpoints(node):
    return {outpoint for outpoint, _v, script in node.unspent_outputs()
            if script in WALLET_SCRIPTS}


def test_the_chain_pays_every_address_of_the_wallet(cache):
    expected = demo_chain(cache_dir=cache).expected
    for script in WALLET_SCRIPTS:
        assert expected[scripthash_from_script(script)]["balance"] > 0


def test_the_mempool_holds_payments_from_the_start_and_after_every_block(cache, tmp_path):
    service, clock, node = running_demo(tmp_path)
    try:
        generated_tip = node.height
        for block in range(3):
            assert len(node.mempool) == PAYMENTS_PER_BLOCK
            txs = list(node.mempool.values())
            to_wallet = [out for tx in txs for out in tx.outputs if out.script in WALLET_SCRIPTS]
            assert len(to_wallet) == 1
            assert to_wallet[0].value <= WALLET_PAYMENT_RANGE[1]
            clock.advance(INTERVAL)
            assert node.height == generated_tip + block + 1
            for tx in txs:
                assert node.find_tx(tx.txid)[1] == node.height
    finally:
        service.stopService()


def test_a_wallet_payment_is_mined_by_the_next_block_and_its_coins_left_alone(cache,
                                                                               tmp_path):
    service, clock, node = running_demo(tmp_path)
    try:
        coins = wallet_outpoints(node)
        coin = wallet_coin(node)
        payment = wallet_payment(node, coin)
        clock.advance(INTERVAL)
        assert node.find_tx(payment.txid)[1] == node.height
        for _block in range(20):
            clock.advance(INTERVAL)
        theirs = coins - {coin[0]} | {payment.txid + idx.to_bytes(4, "little")
                                      for idx in range(len(payment.outputs))}
        assert all(node.spender(outpoint) is None for outpoint in theirs)
    finally:
        service.stopService()


def test_a_demo_started_afresh_makes_the_same_blocks(cache, tmp_path):
    runs = []
    for run in range(2):
        service, clock, node = running_demo(tmp_path / str(run))
        for _block in range(3):
            clock.advance(INTERVAL)
        service.stopService()
        runs.append(node.hashes)
    assert runs[0] == runs[1]


def test_a_demo_run_again_goes_on_from_its_blocks_and_leaves_wallet_coins_alone(cache,
                                                                                 tmp_path):
    service, clock, node = running_demo(tmp_path)
    payment = wallet_payment(node, wallet_coin(node))
    clock.advance(INTERVAL)
    change = (payment.txid + (1).to_bytes(4, "little"), *[(o.value, o.script)
                                                           for o in payment.outputs][1])
    then = txmaker.payment([change], random.Random(3), outputs=1)      # the wallet again
    node.send(then.serialize())
    for _block in range(3):
        clock.advance(INTERVAL)
    service.stopService()
    first_run = node.hashes
    with open(tmp_path / BLOCKS_FILE, "ab") as f:
        f.write(block_record(node.blocks[-1])[:100])        # torn by a crash

    service, clock, node = running_demo(tmp_path)
    service.stopService()
    assert node.hashes == first_run
    assert node.find_tx(payment.txid)[1] == len(first_run) - 4
    generated_height = len(demo_chain().blocks) - 1
    spendable = {outpoint[:32] for outpoint, _v, _s in
                 DemoPayments(node, random.Random(0), generated_height).spendable}
    assert not {payment.txid, then.txid} & spendable
    mined = {tx.txid for raw in node.blocks[generated_height + 1:]
             for tx in deserialize_block_txs(raw)[1:]}
    assert (mined - {payment.txid, then.txid}) & spendable    # the demo's own change


def test_kept_blocks_of_another_chain_are_dropped(cache, tmp_path, log_lines):
    stranger = RegtestNode(demo_chain().blocks[:3])
    stranger.mine(2)
    (tmp_path / BLOCKS_FILE).write_bytes(b"".join(map(block_record, stranger.blocks[3:])))
    service, clock, node = running_demo(tmp_path)
    service.stopService()
    assert node.height == len(demo_chain().blocks) - 1
    assert (tmp_path / BLOCKS_FILE).read_bytes() == b""
    assert any("2 kept blocks do not follow the chain" in line for line in log_lines)


def test_blocks_that_cannot_be_kept_leave_the_demo_going(cache, tmp_path, log_lines):
    (tmp_path / "file").write_text("not a directory")
    service, clock, node = running_demo(tmp_path / "file")
    try:
        for _block in range(2):
            clock.advance(INTERVAL)
        assert node.height == len(demo_chain().blocks) + 1
        assert len(node.mempool) == PAYMENTS_PER_BLOCK
        assert sum("the node's blocks are not kept" in line for line in log_lines) == 1
    finally:
        service.stopService()


def test_coins_someone_else_spent_are_dropped_not_replaced(cache):
    chain = demo_chain(cache_dir=cache)
    node = RegtestNode(chain.blocks)
    payments = DemoPayments(node, random.Random(0), node.height)
    coins = sorted(payments.spendable, key=lambda coin: coin[1])
    spent, richest = coins[:demo.PAY_ATTEMPTS - 1], coins[-1]
    # The node checks no signature: anyone may spend the demo's coins, confirmed or not.
    theirs = [txmaker.payment([coin], random.Random(2), outputs=1) for coin in spent]
    for tx in theirs[:4]:
        node.send(tx.serialize())
    node.mine(1)
    for tx in theirs[4:]:
        node.send(tx.serialize())
    payments.spendable = spent + [richest]
    ours = [node.mempool.get(txid) for txid in payments.add()]
    assert len(ours) == PAYMENTS_PER_BLOCK
    assert not {txin.prevout for tx in ours for txin in tx.inputs} & {o for o, _v, _s in spent}
    assert all(tx.txid in node.mempool for tx in theirs[4:])


def test_the_instructions_name_the_seed_and_the_commands_for_our_tcp_port():
    text = wallet_instructions("127.0.0.1:50001:t")
    lines = text.splitlines()
    assert f"    {WALLET_SEED}" in lines
    commands = wallet_commands("127.0.0.1:50001:t")
    assert lines[-len(commands):] == [f"    {command}" for command in commands]
    assert "--oneserver --server 127.0.0.1:50001:t" in commands[1]


@pytest.mark.parametrize("services, server", [
    ("ws://127.0.0.1:1,tcp://:50001", "127.0.0.1:50001:t"),
    ("tcp://0.0.0.0:2", "127.0.0.1:2:t"),
    ("tcp://[::]:3", "[::1]:3:t"),
    ("tcp://192.0.2.1:4", "192.0.2.1:4:t"),
    ("ws://127.0.0.1:5,rpc://", None),
])
def test_the_wallet_is_pointed_at_our_first_tcp_service(services, server):
    assert electrum_server(parse_services(services, "SERVICES")) == server
