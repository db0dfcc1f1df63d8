"""Protocol 1.7 over real sockets on 127.0.0.1, against an index of the regtest chain.

The scriptPubKey family is checked against the script hash family of 1.6 on
the same server (one implementation answers both, in different wrappings),
and history pages against the filtered whole history.
"""

import random

import pytest
import pytest_twisted

from electrumx.chain.hashes import hash_to_hex_str, scripthash_from_script
from electrumx.protocol.methods.pings import PING_PADDING
from electrumx.regtest import txmaker
from tests.fixtures.regtest import wait_for
from tests.protocol.test_transport import connect, server  # noqa: F401 (fixture)

BAD_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, HISTORY_TOO_LONG = 1, -32601, -32602, 10001


class Client:
    """One connection that negotiated `version`; `ask` sends a request and reads its reply."""

    def __init__(self, line, negotiated):
        self.line = line
        self.negotiated = negotiated
        self.next_id = 1

    @classmethod
    async def open(cls, port, version="1.7"):
        line = await connect(port)
        line.send({"jsonrpc": "2.0", "id": 0, "method": "server.version",
                   "params": ["test", version]})
        return cls(line, (await line.reply())["result"][1])

    async def reply_to(self, method, params):
        self.next_id += 1
        self.line.send({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                        "params": params})
        reply = await self.line.reply()
        assert reply.get("id") == self.next_id, reply
        return reply

    async def ask(self, method, *params):
        """The result, failing the test on an error."""
        reply = await self.reply_to(method, list(params))
        assert "error" not in reply or reply["error"] is None, (method, reply)
        return reply["result"]

    async def error(self, method, *params, named=None):
        """(code, message) of the error the request gets."""
        reply = await self.reply_to(method, named if named is not None else list(params))
        assert reply.get("error"), (method, params, reply)
        return reply["error"]["code"], reply["error"]["message"]

    def close(self):
        self.line.transport.loseConnection()


def busiest_script(node, max_height):
    """The output script paid most often in blocks 1..max_height of a RegtestNode."""
    from electrumx.coins import BitcoinRegtest
    counts = {}
    for raw in node.blocks[1:max_height + 1]:
        for _txid, _prevouts, outputs in BitcoinRegtest.parse_block_txs(raw):
            for _value, script in outputs:
                if script and script[0] != 0x6a:
                    counts[script] = counts.get(script, 0) + 1
    return max(counts, key=counts.get)


async def pay_from(srv, script):
    """Send the node a mempool transaction spending an output of `script`; its txid hex."""
    node = srv.node.node
    outpoint, value, spk = next(o for o in node.unspent_outputs() if o[2] == script)
    tx = txmaker.payment([(outpoint, value, spk)], random.Random(7))
    txid = node.send(tx.serialize())
    await wait_for(lambda: srv.harness.mempool.has_tx(txid))
    return hash_to_hex_str(txid)


# ---- negotiation, and what 1.7 has and has not -------------------------------------

@pytest.mark.parametrize("asked, negotiated", [
    ("1.7", "1.7"), ("1.7.0", "1.7"), (["1.4", "1.7"], "1.7"), (["1.4", "1.8"], "1.7"),
    (["1.7", "2.0"], "1.7"), ("1.6", "1.6"), (["1.4", "1.6"], "1.6"),
])
@pytest_twisted.ensureDeferred
async def test_negotiation(server, asked, negotiated):
    srv = await server()
    client = await Client.open(srv.port, asked)
    assert client.negotiated == negotiated
    client.close()


@pytest_twisted.ensureDeferred
async def test_refused_above_1_7(server):
    srv = await server()
    line = await connect(srv.port)
    line.send({"id": 0, "method": "server.version", "params": ["x", "1.8"]})
    assert (await line.reply())["error"]["code"] == BAD_REQUEST


@pytest_twisted.ensureDeferred
async def test_script_hash_methods_are_gone_at_1_7(server):
    srv = await server()
    client = await Client.open(srv.port)
    sh = "00" * 32
    for method in ("get_balance", "get_history", "get_mempool", "listunspent", "subscribe",
                   "unsubscribe"):
        code, _ = await client.error(f"blockchain.scripthash.{method}", sh)
        assert code == METHOD_NOT_FOUND, method
    assert (await client.error("blockchain.relayfee"))[0] == METHOD_NOT_FOUND
    client.close()


@pytest_twisted.ensureDeferred
async def test_features_per_version(server):
    srv = await server()
    old, new = await Client.open(srv.port, "1.6"), await Client.open(srv.port, "1.7")
    features_16 = await old.ask("server.features")
    features_17 = await new.ask("server.features")
    assert features_16["hash_function"] == "sha256" and "history_pagination" not in features_16
    assert "hash_function" not in features_17 and features_17["history_pagination"] is True
    assert features_17["protocol_max"] == features_16["protocol_max"] == "1.7"
    del features_16["hash_function"], features_17["history_pagination"]
    assert features_16 == features_17
    old.close(), new.close()


# ---- the scriptPubKey family --------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_scriptpubkey_answers_are_the_scripthash_answers_wrapped(server):
    srv = await server(max_recv=100_000)
    script = busiest_script(srv.node.node, 20)
    mempool_txid = await pay_from(srv, script)
    old, new = await Client.open(srv.port, "1.6"), await Client.open(srv.port, "1.7")
    sh, spk = scripthash_from_script(script), script.hex()
    history = await old.ask("blockchain.scripthash.get_history", sh)
    assert history[-1]["tx_hash"] == mempool_txid and len(history) > 5
    assert await new.ask("blockchain.scriptpubkey.get_history", spk) == {"history": history}
    assert await new.ask("blockchain.scriptpubkey.get_mempool", spk) == {
        "history": await old.ask("blockchain.scripthash.get_mempool", sh)}
    assert await new.ask("blockchain.scriptpubkey.listunspent", spk) == {
        "utxos": await old.ask("blockchain.scripthash.listunspent", sh)}
    assert await new.ask("blockchain.scriptpubkey.get_balance", spk) == \
        await old.ask("blockchain.scripthash.get_balance", sh)
    unknown = "6a" + "00" * 9_999           # 10,000 bytes: the longest taken
    assert await new.ask("blockchain.scriptpubkey.get_history", unknown) == {"history": []}
    assert await new.ask("blockchain.scriptpubkey.listunspent", unknown) == {"utxos": []}
    old.close(), new.close()


@pytest.mark.parametrize("spk", [
    "", "0", "abc", "zz", "00 ", " 00", "0x00", 0, 1.5, True, None, [], {}, ["00"],
    "00" * 10_001,
])
@pytest_twisted.ensureDeferred
async def test_bad_scripts_are_refused(server, spk):
    srv = await server(max_recv=100_000)
    client = await Client.open(srv.port)
    for method in ("get_balance", "get_history", "get_mempool", "listunspent"):
        code, message = await client.error(f"blockchain.scriptpubkey.{method}", spk)
        assert code == BAD_REQUEST and "should be a script in hex" in message, method
    client.close()


@pytest_twisted.ensureDeferred
async def test_history_too_large_has_the_standard_code_at_every_version(server):
    srv = await server(max_send=1_000)          # room for 9 history entries
    script = busiest_script(srv.node.node, 20)
    old, new = await Client.open(srv.port, "1.4"), await Client.open(srv.port, "1.7")
    assert await old.error("blockchain.scripthash.get_history",
                           scripthash_from_script(script)) == (HISTORY_TOO_LONG,
                                                               "history too large")
    assert await old.error("blockchain.scripthash.subscribe",
                           scripthash_from_script(script)) == (HISTORY_TOO_LONG,
                                                               "history too large")
    assert await new.error("blockchain.scriptpubkey.get_history", script.hex()) == (
        HISTORY_TOO_LONG, "history too large")
    old.close(), new.close()


# ---- history pages (Fulcrum's from_height / to_height) -----------------------------

@pytest_twisted.ensureDeferred
async def test_history_pages_at_every_boundary(server):
    srv = await server()
    script = busiest_script(srv.node.node, 20)
    mempool_txid = await pay_from(srv, script)
    old, new = await Client.open(srv.port, "1.6"), await Client.open(srv.port, "1.7")
    sh, spk = scripthash_from_script(script), script.hex()
    whole = await old.ask("blockchain.scripthash.get_history", sh)
    confirmed = [e for e in whole if e["height"] > 0]
    mempool = [e for e in whole if e["height"] <= 0]
    assert [e["tx_hash"] for e in mempool] == [mempool_txid]
    tip = srv.harness.db.height
    heights = sorted({e["height"] for e in confirmed})
    middle = heights[len(heights) // 2]

    def page(first, end):
        return [e for e in confirmed if first <= e["height"] and (end == -1 or e["height"] < end)
                ] + (mempool if end == -1 else [])

    cases = [(0, -1), (0, tip + 1), (0, tip), (middle, -1), (middle, middle),
             (middle, middle + 1), (0, middle), (middle, tip + 1000), (tip, tip + 1),
             (tip + 1, -1), (tip + 1, tip + 5), (heights[0], heights[0] + 1), (0, 0),
             (2**31 - 1, -1)]
    for first, end in cases:
        expected = page(first, end)
        assert await old.ask("blockchain.scripthash.get_history", sh, first, end) == expected, \
            (first, end)
        assert await new.ask("blockchain.scriptpubkey.get_history", spk, first, end) == {
            "history": expected}, (first, end)
    assert await old.ask("blockchain.scripthash.get_history", sh, middle) == page(middle, -1)
    named = {"spk": spk, "from_height": middle, "to_height": tip + 1}
    reply = await new.reply_to("blockchain.scriptpubkey.get_history", named)
    assert reply["result"] == {"history": page(middle, tip + 1)}
    old.close(), new.close()


@pytest.mark.parametrize("from_height, to_height, message", [
    (-1, -1, "Bad from_height argument"),
    ("0", -1, "Bad from_height argument"),
    (0.0, -1, "Bad from_height argument"),
    (True, -1, "Bad from_height argument"),
    (None, -1, "Bad from_height argument"),
    (2**31, -1, "Bad from_height argument"),
    (5, 4, "Bad to_height argument"),
    (0, -2, "Bad to_height argument"),
    (0, -1.0, "Bad to_height argument"),
    (0, 1.5, "Bad to_height argument"),
    (0, True, "Bad to_height argument"),
    (0, None, "Bad to_height argument"),
    (0, "10", "Bad to_height argument"),
    (0, 2**31, "Bad to_height argument"),
])
@pytest_twisted.ensureDeferred
async def test_bad_history_ranges_are_refused_as_fulcrum_refuses_them(
        server, from_height, to_height, message):
    srv = await server()
    script = busiest_script(srv.node.node, 20)
    old, new = await Client.open(srv.port, "1.6"), await Client.open(srv.port, "1.7")
    assert await old.error("blockchain.scripthash.get_history", scripthash_from_script(script),
                           from_height, to_height) == (INVALID_PARAMS, message)
    assert await new.error("blockchain.scriptpubkey.get_history", script.hex(),
                           from_height, to_height) == (INVALID_PARAMS, message)
    old.close(), new.close()


# ---- transactions and the mempool ----------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_testmempoolaccept(server):
    srv = await server()
    node = srv.node.node
    outpoint, value, spk = node.unspent_outputs()[0]
    good = txmaker.payment([(outpoint, value, spk)], random.Random(1))
    orphan = txmaker.payment([(bytes(32) + outpoint[32:], value, spk)], random.Random(2))
    client = await Client.open(srv.port)
    answer = await client.ask("blockchain.transaction.testmempoolaccept",
                              [good.serialize().hex()])
    assert answer == [{"txid": hash_to_hex_str(good.txid), "wtxid": hash_to_hex_str(good.wtxid),
                       "allowed": True}]
    assert node.mempool.get(good.txid) is None          # only tested, not sent
    node.send(good.serialize())
    [refused] = await client.ask("blockchain.transaction.testmempoolaccept",
                                 [good.serialize().hex()])
    assert refused["allowed"] is False and refused["reason"] == "txn-already-in-mempool"
    [missing] = await client.ask("blockchain.transaction.testmempoolaccept",
                                 [orphan.serialize().hex()])
    assert missing["allowed"] is False and missing["reason"], missing
    # the node's refusal of the request itself is the client's error, in the node's words
    code, message = await client.error("blockchain.transaction.testmempoolaccept", ["00"])
    assert code == BAD_REQUEST and "decode failed" in message.lower(), message
    client.close()


@pytest.mark.parametrize("raw_txs", [
    [], "00", ["0"], [""], ["zz"], [0], [None], ["00"] * 26, None, {"a": "00"},
    ["0" * (2 * 4_000_000 + 2)],
])
@pytest_twisted.ensureDeferred
async def test_testmempoolaccept_bad_params(server, raw_txs):
    srv = await server(max_recv=10_000_000)
    client = await Client.open(srv.port)
    code, _message = await client.error("blockchain.transaction.testmempoolaccept", raw_txs)
    assert code == BAD_REQUEST
    client.close()


@pytest_twisted.ensureDeferred
async def test_mempool_recent(server):
    srv = await server()
    node = srv.node.node
    client = await Client.open(srv.port)
    assert await client.ask("mempool.recent") == []
    added = []
    for n in range(12):              # one at a time, so that their arrival order is known
        added += node.add_random_transactions(1, random.Random(n))
        await wait_for(lambda: srv.harness.mempool.has_tx(added[-1]))
    recent = await client.ask("mempool.recent")
    assert [r["txid"] for r in recent] == [hash_to_hex_str(t) for t in added[::-1][:10]]
    for entry in recent:
        tx = node.mempool.get(bytes.fromhex(entry["txid"])[::-1])
        assert entry["vsize"] == tx.vsize
        assert entry["fee"] == node.fee_of(tx.txid)
    client.close()


# ---- server.ping --------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_ping_request_per_version(server):
    srv = await server()
    old, new = await Client.open(srv.port, "1.6"), await Client.open(srv.port, "1.7")
    assert await old.ask("server.ping") is None
    assert (await old.error("server.ping", 4))[0] == INVALID_PARAMS
    assert await new.ask("server.ping") == {"data": ""}
    assert await new.ask("server.ping", 5, "abcd") == {"data": "00000"}
    reply = await new.reply_to("server.ping", {"pong_len": 2, "data": "0"})
    assert reply["result"] == {"data": "00"}
    for bad in ([-1], [1.0], [True], ["2"], [0, "xyz"], [0, 5], [1_000_001]):
        assert (await new.error("server.ping", *bad))[0] == BAD_REQUEST, bad
    old.close(), new.close()


@pytest_twisted.ensureDeferred
async def test_a_clients_ping_notification_gets_no_reply(server):
    srv = await server()
    client = await Client.open(srv.port)
    client.line.send({"jsonrpc": "2.0", "method": "server.ping", "params": ["beef"]},
                     {"jsonrpc": "2.0", "method": "server.ping", "params": []},
                     {"jsonrpc": "2.0", "method": "server.ping", "params": ["not hex"]})
    assert await client.ask("server.features")        # the next line is this reply
    session = next(iter(srv.manager.sessions.values()))
    assert session.requests == 5        # version, three notifications, features
    client.close()


@pytest_twisted.ensureDeferred
async def test_the_server_pings_1_7_sessions_on_each_block(server):
    srv = await server()
    old, new = await Client.open(srv.port, "1.6"), await Client.open(srv.port, "1.7")
    srv.node.node.reveal(21)
    ping = await new.line.reply()
    assert ping == {"jsonrpc": "2.0", "method": "server.ping", "params": [PING_PADDING]}
    srv.node.node.add_random_transactions(3)      # mempool changes: no ping
    srv.node.node.reveal(22)
    assert await new.line.reply() == ping
    assert await old.ask("server.ping") is None   # the 1.6 session got nothing before
    assert await new.ask("server.ping") == {"data": ""}
    old.close(), new.close()
