"""Protocol 1.7's subscriptions over real sockets on 127.0.0.1, against the server on the
built-in regtest node: outpoints in each of their five states, their notifications
after a block, a mempool spend, an RBF replacement and reorgs; the checks of their
parameters; the limits; and scriptpubkey notifications carrying the script."""

import pytest_twisted

from electrumx.chain.hashes import hash_to_hex_str, scripthash_from_script
from electrumx.protocol.errors import BAD_REQUEST, INVALID_PARAMS, METHOD_NOT_FOUND
from electrumx.protocol.outpoint_subs import OUTPOINT_METHOD
from electrumx.protocol.subscriptions import SCRIPTHASH_METHOD, SCRIPTPUBKEY_METHOD
from tests.fixtures.blocks import script_for, spend
from tests.fixtures.regtest import wait_for
from tests.protocol.test_transport import connect, server  # noqa: F401 (a fixture)


class Client:
    """A 1.7 (or other) client over a LineClient: requests answered in turn, and the
    notifications that arrive meanwhile kept in order."""

    def __init__(self, line_client):
        self.lines = line_client
        self.notes = []
        self._id = 0

    @classmethod
    async def connect(cls, srv, version="1.7"):
        client = cls(await connect(srv.port))
        assert (await client.call("server.version", "t", version))[1] == version
        return client

    async def reply(self, method, *params):
        """The whole reply to one request (its result or its error)."""
        self._id += 1
        self.lines.send({"jsonrpc": "2.0", "id": self._id, "method": method,
                         "params": list(params)})
        while True:
            message = await self.lines.reply()
            if message.get("id") == self._id:
                return message
            self.notes.append((message["method"], message["params"]))

    async def call(self, method, *params):
        message = await self.reply(method, *params)
        assert "error" not in message, (method, message["error"])
        return message["result"]

    async def error(self, method, *params):
        message = await self.reply(method, *params)
        assert "error" in message, (method, message)
        return message["error"]["code"], message["error"]["message"]

    async def settled(self):
        """The notifications received up to now (a round trip: the server sends what an
        index change earns before it reads the next request)."""
        await self.call("server.ping")
        return [note for note in self.notes if note[0] != "server.ping"]

    def of(self, method):
        """The params of the notifications of `method` received so far."""
        waiting = self.lines.lines.pending         # lines read that nobody asked for yet
        while waiting:
            message = waiting.pop(0)
            self.notes.append((message["method"], message["params"]))
        return [params for name, params in self.notes if name == method]

    def close(self):
        self.lines.transport.loseConnection()


async def at_tip(srv):
    """Wait until the index has the node's tip and its mempool the node's mempool."""
    node = srv.node.node
    await wait_for(lambda: srv.harness.db.tip == node.tip_hash)
    await wait_for(lambda: all(srv.harness.mempool.has_tx(t) for t in node.mempool))


async def send(srv, tx):
    srv.node.node.send(tx.serialize())
    await wait_for(lambda: srv.harness.mempool.has_tx(tx.txid))
    return tx


def coin(srv, depth=4):
    """(txid, index, value, script) of a confirmed unspent output `depth` blocks deep."""
    node = srv.node.node
    prevout, value, script = node.unspent_outputs(max_height=node.height - depth)[0]
    return prevout[:32], int.from_bytes(prevout[32:], "little"), value, script


def outpoint(txid, idx, script=None):
    params = [hash_to_hex_str(txid), idx]
    return params if script is None else params + [script.hex()]


def notes_about(client, txid, idx):
    return [status for tx_hash, index, status in client.of(OUTPOINT_METHOD)
            if (tx_hash, index) == (hash_to_hex_str(txid), idx)]


@pytest_twisted.ensureDeferred
async def test_five_states_and_their_notifications(server):
    srv = await server()
    node = srv.node.node
    client = await Client.connect(srv)
    u_txid, u_idx, value, script = coin(srv)
    u_height = (await client.call("blockchain.outpoint.get_status",
                                  *outpoint(u_txid, u_idx, script)))["funder_height"]
    assert 0 < u_height <= node.height - 4

    # Funded and confirmed; and an output of a transaction not sent yet: unknown.
    a = spend([(u_txid, u_idx)], [(value - 3000, script_for(1))])
    funded = {"funder_height": u_height}
    assert await client.call("blockchain.outpoint.subscribe",
                             *outpoint(u_txid, u_idx, script)) == funded
    assert await client.call("blockchain.outpoint.subscribe",
                             *outpoint(a.txid, 0, script_for(1))) == {}
    assert await client.call("blockchain.outpoint.get_status",
                             *outpoint(a.txid, 0, script_for(1))) == {}

    # A spends U in the mempool: U is spent in the mempool, A's output funded there.
    await send(srv, a)
    spent_in_mempool = {**funded, "spender_txhash": hash_to_hex_str(a.txid),
                        "spender_height": 0}
    await wait_for(lambda: len(client.of(OUTPOINT_METHOD)) == 2)
    assert notes_about(client, u_txid, u_idx) == [spent_in_mempool]
    assert notes_about(client, a.txid, 0) == [{"funder_height": 0}]
    for args, status in (((u_txid, u_idx, script), spent_in_mempool),
                         ((a.txid, 0, script_for(1)), {"funder_height": 0})):
        assert await client.call("blockchain.outpoint.get_status", *outpoint(*args)) == status

    # A block confirms A: spent and confirmed, funded and confirmed.
    node.mine(1)
    height = node.height
    await at_tip(srv)
    await wait_for(lambda: len(client.of(OUTPOINT_METHOD)) == 4)
    spent = {**funded, "spender_txhash": hash_to_hex_str(a.txid), "spender_height": height}
    assert notes_about(client, u_txid, u_idx) == [spent_in_mempool, spent]
    assert notes_about(client, a.txid, 0) == [{"funder_height": 0},
                                              {"funder_height": height}]
    for args, status in (((u_txid, u_idx, script), spent),
                         ((a.txid, 0, script_for(1)), {"funder_height": height})):
        assert await client.call("blockchain.outpoint.get_status", *outpoint(*args)) == status
        assert await client.call("blockchain.outpoint.subscribe", *outpoint(*args)) == status

    # Blocks that change neither: no notification.
    node.mine(2)
    await at_tip(srv)
    assert len([n for n in await client.settled() if n[0] == OUTPOINT_METHOD]) == 4
    client.close()


@pytest_twisted.ensureDeferred
async def test_get_status_does_not_subscribe(server):
    srv = await server()
    client = await Client.connect(srv)
    u_txid, u_idx, value, script = coin(srv)
    await client.call("blockchain.outpoint.get_status", *outpoint(u_txid, u_idx, script))
    await send(srv, spend([(u_txid, u_idx)], [(value - 3000, script_for(1))]))
    srv.node.node.mine(1)
    await at_tip(srv)
    assert client.of(OUTPOINT_METHOD) == [] and await client.settled() == []
    assert srv.manager.methods.subscriptions.subscription_count == 0
    client.close()


@pytest_twisted.ensureDeferred
async def test_a_replacement_and_a_parent_confirming_are_notified(server):
    srv = await server()
    node = srv.node.node
    client = await Client.connect(srv)
    u_txid, u_idx, value, script = coin(srv)
    a = spend([(u_txid, u_idx)], [(value - 3000, script_for(1))])
    b = spend([(a.txid, 0)], [(value - 6000, script_for(2))])
    await client.call("blockchain.outpoint.subscribe", *outpoint(u_txid, u_idx, script))
    await client.call("blockchain.outpoint.subscribe", *outpoint(b.txid, 0, script_for(2)))
    await send(srv, a)
    await send(srv, b)
    # B spends an unconfirmed output: its own output is funded at -1.
    await wait_for(lambda: notes_about(client, b.txid, 0) == [{"funder_height": -1}])

    # A block with A alone (it touches neither B's script nor B): B turns 0.
    node.mine(1, max_txs=1)
    await at_tip(srv)
    await wait_for(lambda: len(notes_about(client, b.txid, 0)) == 2)
    assert notes_about(client, b.txid, 0)[-1] == {"funder_height": 0}

    # The spender of a mempool spend replaced (RBF): the new spender is notified.
    u2_txid, u2_idx, value2, script2 = coin(srv, depth=5)
    c = await send(srv, spend([(u2_txid, u2_idx)], [(value2 - 3000, script_for(3))]))
    await client.call("blockchain.outpoint.subscribe", *outpoint(u2_txid, u2_idx, script2))
    before = len(notes_about(client, u2_txid, u2_idx))
    replacement = node.replace_transaction(c.txid, fee_bump=5000)
    await wait_for(lambda: srv.harness.mempool.has_tx(replacement)
                   and not srv.harness.mempool.has_tx(c.txid))
    await wait_for(lambda: len(notes_about(client, u2_txid, u2_idx)) == before + 1)
    note = notes_about(client, u2_txid, u2_idx)[-1]
    assert note["spender_txhash"] == hash_to_hex_str(replacement)
    assert note["spender_height"] == 0

    # The replacement evicted: unspent again.
    node.drop_from_mempool(replacement)
    await wait_for(lambda: len(notes_about(client, u2_txid, u2_idx)) == before + 2)
    assert set(notes_about(client, u2_txid, u2_idx)[-1]) == {"funder_height"}
    client.close()


@pytest_twisted.ensureDeferred
async def test_reorgs_make_outpoints_unspent_or_unknown_again(server):
    srv = await server()
    node = srv.node.node
    client = await Client.connect(srv)
    u_txid, u_idx, value, script = coin(srv)
    a = spend([(u_txid, u_idx)], [(value - 3000, script_for(1))])
    await client.call("blockchain.outpoint.subscribe", *outpoint(u_txid, u_idx, script))
    await client.call("blockchain.outpoint.subscribe", *outpoint(a.txid, 0, script_for(1)))
    await send(srv, a)
    node.mine(1)
    await at_tip(srv)
    await wait_for(lambda: len(notes_about(client, a.txid, 0)) == 2)
    mined_at = node.height
    assert notes_about(client, a.txid, 0)[-1] == {"funder_height": mined_at}

    # The block is reorganised away: A is back in the mempool.
    node.reorg(1)
    await at_tip(srv)
    await wait_for(lambda: notes_about(client, a.txid, 0)[-1] == {"funder_height": 0})
    await wait_for(lambda: notes_about(client, u_txid, u_idx)[-1].get("spender_height") == 0)

    # A new branch double-spends U: A and its output are unknown again, U spent by the
    # double spend.
    double = spend([(u_txid, u_idx)], [(value - 5000, script_for(4))])
    fork = node.reorg(1, txs=[double.serialize()])
    await at_tip(srv)
    await wait_for(lambda: notes_about(client, a.txid, 0)[-1] == {})
    await wait_for(lambda: notes_about(client, u_txid, u_idx)[-1].get("spender_txhash")
                   == hash_to_hex_str(double.txid))
    assert notes_about(client, u_txid, u_idx)[-1]["spender_height"] == fork + 1

    # That branch reorganised away and the double spend forgotten: U is unspent again.
    node.reorg(2)
    await at_tip(srv)
    node.drop_from_mempool(double.txid)
    await wait_for(lambda: not srv.harness.mempool.has_tx(double.txid))
    await wait_for(lambda: set(notes_about(client, u_txid, u_idx)[-1]) == {"funder_height"})
    client.close()


@pytest_twisted.ensureDeferred
async def test_parameters_are_checked(server):
    srv = await server(max_recv=50_000)
    client = await Client.connect(srv)
    u_txid, u_idx, _value, script = coin(srv)
    txid = hash_to_hex_str(u_txid)
    for method in ("blockchain.outpoint.subscribe", "blockchain.outpoint.get_status"):
        # The hint names another script, or is empty, or is missing.
        code, message = await client.error(method, txid, u_idx, script_for(77).hex())
        assert code == BAD_REQUEST and "spk_hint does not match" in message
        assert (await client.error(method, txid, u_idx, ""))[0] == BAD_REQUEST
        code, message = await client.error(method, txid, u_idx)
        assert code == INVALID_PARAMS and "3 arguments, 2 given" in message
        assert (await client.error(method, txid, u_idx, "ab" * 10_001))[0] == BAD_REQUEST
        assert (await client.error(method, txid, u_idx, "abc"))[0] == BAD_REQUEST
        # Output indexes: integers from 0 to 2**32 - 1 only.
        for bad in (1.5, True, "0", -1, None, 2**32):
            code, message = await client.error(method, txid, bad, script.hex())
            assert code == BAD_REQUEST and "txout_idx" in message, (bad, message)
        for bad in (txid[:-2], txid.upper()[:-1] + "g", 5, None):
            assert (await client.error(method, bad, u_idx, script.hex()))[0] == BAD_REQUEST
        assert (await client.error(method))[0] == INVALID_PARAMS
    # Named parameters, as the spec names them.
    named = {"tx_hash": txid, "txout_idx": u_idx, "spk_hint": script.hex()}
    client.lines.send({"jsonrpc": "2.0", "id": 99, "method": "blockchain.outpoint.get_status",
                       "params": named})
    assert "funder_height" in (await client.lines.reply())["result"]
    # An unknown outpoint cannot be checked against its hint: {} whatever the hint.
    assert await client.call("blockchain.outpoint.get_status", "11" * 32, 0,
                             script_for(77).hex()) == {}
    # Nothing was subscribed by the refused requests.
    assert srv.manager.methods.subscriptions.subscription_count == 0
    code, _message = await client.error("blockchain.outpoint.unsubscribe", txid, "0")
    assert code == BAD_REQUEST
    assert await client.call("blockchain.outpoint.unsubscribe", txid, u_idx) is False
    client.close()

    # Before 1.7 there are no such methods.
    old = await Client.connect(srv, "1.6")
    for method, params in (("blockchain.outpoint.get_status", [txid, 0, script.hex()]),
                           ("blockchain.scriptpubkey.subscribe", [script.hex()])):
        assert (await old.error(method, *params))[0] == METHOD_NOT_FOUND
    old.close()


@pytest_twisted.ensureDeferred
async def test_scriptpubkey_notifications_carry_the_script(server):
    srv = await server(max_recv=50_000)
    client = await Client.connect(srv)
    old = await Client.connect(srv, "1.6")
    u_txid, u_idx, value, script = coin(srv)
    status = await client.call("blockchain.scriptpubkey.subscribe", script.hex().upper())
    assert status == await old.call("blockchain.scripthash.subscribe",
                                    scripthash_from_script(script))
    payee = script_for(5)
    assert await client.call("blockchain.scriptpubkey.subscribe", payee.hex()) is None
    await send(srv, spend([(u_txid, u_idx)], [(value - 3000, payee)]))
    await wait_for(lambda: len(client.of(SCRIPTPUBKEY_METHOD)) == 2)
    notes = dict(client.of(SCRIPTPUBKEY_METHOD))
    assert set(notes) == {script.hex(), payee.hex()}
    assert notes[payee.hex()] == await client.call("blockchain.scriptpubkey.subscribe",
                                                   payee.hex())
    await wait_for(lambda: len(old.of(SCRIPTHASH_METHOD)) == 1)
    assert old.of(SCRIPTHASH_METHOD) == [[scripthash_from_script(script),
                                          notes[script.hex()]]]
    assert client.of(SCRIPTHASH_METHOD) == []
    assert await client.call("blockchain.scriptpubkey.unsubscribe", payee.hex()) is True
    assert await client.call("blockchain.scriptpubkey.unsubscribe", payee.hex()) is False
    assert (await client.error("blockchain.scriptpubkey.subscribe", ""))[0] == BAD_REQUEST
    assert (await client.error("blockchain.scriptpubkey.subscribe",
                               "00" * 10_001))[0] == BAD_REQUEST
    assert await client.call("blockchain.scriptpubkey.subscribe", "00" * 10_000) is None
    client.close()
    old.close()


@pytest_twisted.ensureDeferred
async def test_limits_count_both_kinds_and_a_disconnect_releases_them(server):
    srv = await server(max_session_subs=4, max_subs=6)
    registry = srv.manager.methods.subscriptions
    client = await Client.connect(srv)
    u_txid, u_idx, _value, script = coin(srv)
    await client.call("blockchain.scriptpubkey.subscribe", script_for(1).hex())
    await client.call("blockchain.outpoint.subscribe", *outpoint(u_txid, u_idx, script))
    await client.call("blockchain.outpoint.subscribe", *outpoint(u_txid, u_idx, script))
    await client.call("blockchain.outpoint.subscribe", *outpoint(bytes(32), 3, script))
    assert registry.subscription_count == 3
    # A 129-byte script counts twice: over the session's limit of 4.
    code, message = await client.error("blockchain.scriptpubkey.subscribe", "51" * 129)
    assert code == BAD_REQUEST and "per-session subscription limit 4" in message
    await client.call("blockchain.scriptpubkey.subscribe", "51" * 128)
    code, message = await client.error("blockchain.outpoint.subscribe",
                                       *outpoint(bytes(32), 4, script))
    assert "per-session subscription limit 4" in message
    other = await Client.connect(srv)
    await other.call("blockchain.outpoint.subscribe", *outpoint(u_txid, u_idx, script))
    await other.call("blockchain.scriptpubkey.subscribe", script_for(1).hex())
    code, message = await other.error("blockchain.outpoint.subscribe",
                                      *outpoint(bytes(32), 5, script))
    assert "server subscription limit 6" in message
    assert await client.call("blockchain.outpoint.unsubscribe",
                             *outpoint(bytes(32), 3)) is True
    await other.call("blockchain.outpoint.subscribe", *outpoint(bytes(32), 5, script))
    assert registry.subscription_count == 6

    client.close()
    await wait_for(lambda: registry.subscription_count == 3)
    other.close()
    await wait_for(lambda: registry.subscription_count == 0)
    assert registry._outpoints._subscribers == {} and registry._outpoints._filed == {}
    assert registry._scripts == {}
