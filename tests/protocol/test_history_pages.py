"""A history too long for one reply, read in pages (from_height / to_height) over a socket.

The chain is generated once per machine and cached (as the regtest cache
does): 60 blocks, 21,000 transactions, nearly all of which touch one script.
At MAX_SEND 1,000,000 a reply holds 10,100 history entries, so that script's
whole history is "history too large", while pages of a few blocks each are
served; joined, with the mempool page last, they are the whole history the
generator recorded.
"""

import random

import pytest
import pytest_twisted

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.regtest import txmaker
from electrumx.regtest.cache import load_or_generate
from electrumx.regtest.workload import WorkloadParams
from tests.fixtures.regtest import wait_for
from tests.protocol.test_protocol_17 import HISTORY_TOO_LONG, Client
from tests.protocol.test_transport import server  # noqa: F401 (fixture)

BUSY = WorkloadParams(blocks=60, txs=21_000, zipf=3.0, scripts=50, sample=0)
"""Payees drawn so steeply that the busiest script is in about 98% of transactions."""
PAGE_BLOCKS = 8


@pytest.fixture(scope="module")
def busy_chain(tmp_path_factory):
    """(raw blocks, the busiest script, its expected confirmed history)."""
    chain = load_or_generate(BUSY, str(tmp_path_factory.getbasetemp() / "regtest-cache"))
    entry = max(chain.expected.values(), key=lambda e: len(e["history"]))
    history = [{"tx_hash": txid, "height": height} for txid, height in entry["history"]]
    return chain.blocks, bytes.fromhex(entry["script"]), history


@pytest_twisted.ensureDeferred
async def test_a_20_000_transaction_history_read_in_pages(server, busy_chain):
    blocks, script, expected = busy_chain
    assert len(expected) > 20_000
    srv = await server(blocks=blocks, reveal=len(blocks) - 1, max_send=1_000_000)
    node = srv.node.node
    outpoint, value, spk = next(o for o in node.unspent_outputs() if o[2] == script)
    pending = txmaker.payment([(outpoint, value, spk)], random.Random(3))
    node.send(pending.serialize())
    await wait_for(lambda: srv.harness.mempool.has_tx(pending.txid))
    client = await Client.open(srv.port)
    spk_hex = script.hex()
    assert await client.error("blockchain.scriptpubkey.get_history", spk_hex) == (
        HISTORY_TOO_LONG, "history too large")

    tip = srv.harness.db.height
    pages = []
    for first in range(0, tip + 1, PAGE_BLOCKS):
        answer = await client.ask("blockchain.scriptpubkey.get_history", spk_hex, first,
                                  first + PAGE_BLOCKS)
        page = answer["history"]
        assert all(first <= e["height"] < first + PAGE_BLOCKS for e in page)
        pages.append(page)
    confirmed = [entry for page in pages for entry in page]
    assert confirmed == expected
    mempool = (await client.ask("blockchain.scriptpubkey.get_history", spk_hex, tip + 1))[
        "history"]
    assert [e["tx_hash"] for e in mempool] == [hash_to_hex_str(pending.txid)]
    assert mempool[0]["height"] == 0 and mempool[0]["fee"] == node.fee_of(pending.txid)
    # a page too long is refused as the whole history is: the limit is per page
    assert await client.error("blockchain.scriptpubkey.get_history", spk_hex, 0, tip + 1) == (
        HISTORY_TOO_LONG, "history too large")
    client.close()
