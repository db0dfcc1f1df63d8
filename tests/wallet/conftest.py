"""Fixtures of the wallet test: the child processes, a restored Electrum wallet, the chain."""

import sys
from pathlib import Path

import pytest

from electrumx.chain.hashes import scripthash_from_script
from electrumx.coins import BitcoinRegtest
from electrumx.regtest.cache import load_or_generate
from electrumx.regtest.workload import WorkloadParams
from tests.wallet.electrum_cli import ElectrumCLI, find_electrum
from tests.fixtures.host import free_port
from tests.wallet.processes import Processes, clean_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
VENV_TWISTD = Path(sys.executable).parent / "twistd"
TWISTD = [str(VENV_TWISTD)] if VENV_TWISTD.exists() else \
    [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
# A fixed Electrum "segwit" seed (made once by `electrum create --seed_type segwit`),
# so the wallet's addresses, and therefore the chain paying them, never change.
SEED = "seed ability dice garment cup crystal identify milk gallery physical lobster diagram"
# How many receiving addresses the chain pays: well within Electrum's gap limit of 20.
PAID_ADDRESSES = 5
WAIT = 60


@pytest.fixture
def processes(tmp_path):
    """A Processes whose children are all stopped at teardown."""
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def electrum(tmp_path):
    """An ElectrumCLI with the SEED wallet restored offline (no daemon yet)."""
    cli = ElectrumCLI(find_electrum(), tmp_path / "home", clean_env())
    cli.data_dir.mkdir(parents=True)
    cli("restore", SEED, offline=True)
    return cli


class Chain:
    """The regtest node's chain: the wallet's addresses it pays and what it made for them."""

    def __init__(self, addresses, expected, tip, node_port):
        self.addresses = addresses
        self.expected = [expected[scripthash_from_script(BitcoinRegtest.address_to_script(a))]
                         for a in addresses]
        self.tip = tip
        self.node_port = node_port


@pytest.fixture
def chain(electrum, processes, tmp_path):
    """The tiny regtest chain paying the wallet's first addresses, served by a node process.

    The test generates the chain first, into the cache the node then loads,
    so both hold the same blocks and the test knows the expected answers.
    """
    addresses = electrum("listaddresses", "--receiving", offline=True)[:PAID_ADDRESSES]
    cache = tmp_path / "regtest-cache"
    params = WorkloadParams.preset("tiny", extra_payees=[BitcoinRegtest.address_to_script(a)
                                                         for a in addresses])
    generated = load_or_generate(params, str(cache))
    port = free_port()
    pay_to = [arg for a in addresses for arg in ("--pay-to", a)]
    processes.start("node", [sys.executable, "-m", "electrumx.regtest", "--size", "tiny",
                             "--port", str(port), "--cache-dir", str(cache), "--txindex", "0",
                             *pay_to],
                    clean_env(PYTHONPATH=str(ROOT)))
    processes.wait_for_port("node", port, WAIT)
    return Chain(addresses, generated.expected, len(generated.blocks) - 1, port)


@pytest.fixture
def server_port(chain, processes, tmp_path):
    """Our server indexing the chain's node, serving TCP on 127.0.0.1 once caught up."""
    port = free_port()
    db = tmp_path / "index"
    db.mkdir()
    env = clean_env(PYTHONPATH=str(ROOT), COIN="Bitcoin", NET="regtest",
                    DAEMON_URL=f"http://regtest:regtest@127.0.0.1:{chain.node_port}/",
                    DB_DIRECTORY=str(db), SERVICES=f"tcp://127.0.0.1:{port}", ALLOW_ROOT="1")
    processes.start("server", [*TWISTD, "-n", "--pidfile=", "electrumx"], env)
    processes.wait_for_port("server", port, WAIT)   # the listeners open once caught up
    return port


@pytest.fixture
def wallet(electrum, server_port, processes):
    """The restored wallet loaded in an Electrum daemon that talks to our server only.

    The daemon runs in the foreground as our child, so teardown can always end
    it: `stop` first, as a user would, then the signal if it did not listen.
    """
    daemon = processes.start("electrum", electrum.daemon_argv(server_port), electrum.env)

    def answering():
        assert daemon.poll() is None, processes.log_of("electrum")
        return electrum.run("getinfo").returncode == 0
    wait_until(answering, WAIT, "electrum daemon answering")
    try:
        electrum("load_wallet")
        yield electrum
    finally:
        electrum.run("stop", timeout=WAIT)
