"""Requests answered while the index reorganises never mix two chains.

Clients keep asking for header ranges and for the histories of scripts the
reorganisation changes, while the node replaces its last blocks.  Every
answer must come from one chain: header ranges link hash to hash, and the
confirmed part of a history belongs wholly to the old chain or wholly to
the new one (the part below the fork belongs to both).
"""

import pytest_twisted
from twisted.internet import defer

from electrumx.chain.hashes import double_sha256, scripthash_from_script
from electrumx.coins import BitcoinRegtest
from tests.fixtures.regtest import wait_for
from tests.protocol.test_transport import connect, server, version  # noqa: F401 (fixture)

DEPTH = 3
CLIENTS = 6


def touched_scripthashes(raw_blocks):
    """Scripthashes paid by the given blocks (their histories change in the reorg)."""
    found = []
    for raw in raw_blocks:
        for _txid, _prevouts, outputs in BitcoinRegtest.parse_block_txs(raw):
            for _value, script in outputs:
                if script and script[0] != 0x6a:            # not OP_RETURN
                    found.append(scripthash_from_script(script))
    return sorted(set(found))[:8]


def linked(headers_hex: str) -> bool:
    raw = bytes.fromhex(headers_hex)
    headers = [raw[i:i + 80] for i in range(0, len(raw), 80)]
    return all(headers[i][4:36] == double_sha256(headers[i - 1]) for i in range(1, len(headers)))


def confirmed(history):
    return {(item["tx_hash"], item["height"]) for item in history if item["height"] > 0}


async def history(client, scripthash, request_id):
    client.send({"jsonrpc": "2.0", "id": request_id, "method": "blockchain.scripthash.get_history",
                 "params": [scripthash]})
    return (await client.reply())["result"]


@pytest_twisted.ensureDeferred
async def test_answers_during_a_reorg_come_from_one_chain(server):
    srv = await server()
    node, db = srv.node.node, srv.harness.db
    old_tip_height = db.height
    fork = old_tip_height - DEPTH
    scripthashes = touched_scripthashes(node.blocks[fork + 1:old_tip_height + 1])
    assert scripthashes

    clients = [await connect(srv.port) for _ in range(CLIENTS)]
    for client in clients:
        client.send(version())
        await client.reply()
    before = {sh: confirmed(await history(clients[0], sh, 2)) for sh in scripthashes}

    answers = {"headers": [], "history": []}
    finished = []

    async def hammer(client, number):
        request_id = 10
        while not finished:
            request_id += 1
            client.send({"jsonrpc": "2.0", "id": request_id, "method": "blockchain.block.headers",
                         "params": [fork - 2, DEPTH + 6]})
            answers["headers"].append((await client.reply())["result"])
            scripthash = scripthashes[(request_id + number) % len(scripthashes)]
            answers["history"].append((scripthash, await history(client, scripthash,
                                                                  request_id + 1_000_000)))

    running = [defer.ensureDeferred(hammer(c, n)) for n, c in enumerate(clients)]
    await wait_for(lambda: len(answers["history"]) > 50)
    node.reorg(DEPTH)
    new_tip = node.hashes[-1]
    await wait_for(lambda: db.tip == new_tip, timeout=30)
    settled = len(answers["history"])
    await wait_for(lambda: len(answers["history"]) > settled + 50)
    finished.append(True)
    await defer.DeferredList(running)

    after = {sh: confirmed(await history(clients[0], sh, 3)) for sh in scripthashes}
    assert any(before[sh] != after[sh] for sh in scripthashes), "the reorg changed nothing"
    for headers in answers["headers"]:
        assert linked(headers["hex"]), "a header range mixed two chains"
    for scripthash, answer in answers["history"]:
        got = confirmed(answer)
        assert got <= before[scripthash] or got <= after[scripthash], \
            f"history of {scripthash} mixed two chains"
    first_replaced = {bytes.fromhex(h["hex"])[3 * 80:4 * 80].hex()
                      for h in answers["headers"] if h["count"] > 3}
    assert len(first_replaced) == 2, "answers from both chains were seen"
    for client in clients:
        client.transport.loseConnection()
