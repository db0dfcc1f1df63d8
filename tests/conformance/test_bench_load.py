"""bench/load.py's client against our real server on the tiny chain: an answer judged by the
memo of verdicts is judged as a full check would, errors are still parsed and
counted, and a load split over client processes (--procs) merges their counts."""

import random
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from load import (HEAVY_TXS, ChainFacts, Load, Mix, Workload,  # noqa: E402
                  request_line)
from processes import CAUGHT_UP, free_port, start_node, start_server, stop, wait_for  # noqa: E402

from electrumx.regtest.cache import load_or_generate  # noqa: E402
from electrumx.regtest.workload import WorkloadParams  # noqa: E402

BALANCES = Mix((("blockchain.scripthash.get_balance", 1),), 0.0, HEAVY_TXS)
NOT_A_SCRIPTHASH = "not a scripthash"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(port, ChainFacts) of our server, its own process, synced to the tiny chain."""
    work = tmp_path_factory.mktemp("load")
    cache = work / "cache"
    chain = load_or_generate(WorkloadParams.preset("tiny"), str(cache))
    node, node_port = start_node(work, "tiny", 120, cache_dir=cache)
    server = None
    try:
        port = free_port()
        server, log = start_server(work, node_port, SERVICES=f"tcp://127.0.0.1:{port}",
                                   COST_SOFT_LIMIT="0", COST_HARD_LIMIT="0")
        wait_for(log, CAUGHT_UP, server, 120)
        wait_for(log, "serving tcp on", server, 120)
        yield port, ChainFacts(chain)
    finally:
        stop(*(p for p in (server, node) if p is not None))


def with_wrong_balance(facts, scripthash):
    """`facts` expecting one more satoshi than the chain has for `scripthash`."""
    about = facts.expected[scripthash]
    facts.expected = dict(facts.expected, **{scripthash: dict(about,
                                                              balance=about["balance"] + 1)})
    return facts


class Recorded(Workload):
    """The workload, keeping the scripthash of every request it hands out."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked = []

    def next_request(self):
        label, method, params = super().next_request()
        self.asked.append(params[0])
        return label, method, params


@pytest_twisted.ensureDeferred
async def test_a_wrong_answer_stays_wrong_when_judged_by_the_memo(served):
    port, facts = served
    # Two scripts with the same balance: the same reply line, right for one only.
    altered, right = [sh for sh in facts.used if facts.expected[sh]["balance"] == 0][:2]
    workload = Recorded(with_wrong_balance(facts, altered), BALANCES, random.Random(5))
    workload.used, workload.unused = [altered, right], [NOT_A_SCRIPTHASH]
    load = Load(reactor, port, workload, 2, 60, 300)
    await load.run()

    asked = workload.asked
    assert len(asked) == load.summary()["all"]["requests"] == 300
    assert asked.count(altered) > 50 and asked.count(right) > 50
    # Each request about the altered script was counted wrong, memo or not, and the
    # memo holds the verdicts: wrong for one, right for the other.
    refused = asked.count(NOT_A_SCRIPTHASH)
    assert load.mismatches["get_balance"] == asked.count(altered) + refused
    line = request_line("blockchain.scripthash.get_balance", [altered])
    assert load.verdicts[line][1] is False
    assert load.verdicts[request_line("blockchain.scripthash.get_balance", [right])][1]
    # Errors are parsed each time, counted by their message, never memoised.
    assert refused > 20 and sum(load.errors.values()) == refused
    assert all(message.startswith("get_balance: ") for message in load.errors)
    assert request_line("blockchain.scripthash.get_balance", [NOT_A_SCRIPTHASH]) \
        not in load.verdicts
    assert load.fields["get_balance"] == {"confirmed", "unconfirmed"}
    assert load.server_version[1] == "1.4"


@pytest_twisted.ensureDeferred
async def test_client_processes_split_the_load_and_their_counts_merge(served):
    port, facts = served
    altered = facts.used[0]
    workload = Workload(with_wrong_balance(facts, altered), BALANCES, random.Random(6))
    workload.used = workload.unused = [altered]
    load = Load(reactor, port, workload, 3, 60, 301, procs=2)
    await load.run()

    summary = load.summary()
    assert summary["all"]["requests"] == summary["get_balance"]["requests"] == 301
    assert summary["all"]["mismatches"] == 301          # every answer checked, in both
    assert load.errors == {} and load.server_version[1] == "1.4"
    assert load.fields["get_balance"] == {"confirmed", "unconfirmed"}
    assert load.started < load.stopped and load.client_cpu_s > 0
