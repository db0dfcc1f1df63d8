"""JSON-RPC details over a real socket: -32602 messages that name the method and what it
takes, -32600 answers that echo a readable id, integers beyond 64 bits kept exact, and
"jsonrpc" other than "2.0" refused."""

import json

import pytest
import pytest_twisted

from tests.protocol.test_transport import LineClient, connect, server, version  # noqa: F401

SCRIPTHASH = "00" * 32


class ExactLineClient(LineClient):
    """Reads replies with the standard library's json, which keeps every integer exact."""

    loads = staticmethod(json.loads)


async def negotiated(port):
    client = await connect(port, client_class=ExactLineClient)
    client.send(version())
    await client.reply()
    return client


@pytest.mark.parametrize("method, params, message", [
    ("blockchain.scripthash.get_balance", [SCRIPTHASH, 1],
     "blockchain.scripthash.get_balance takes 1 argument, 2 given"),
    ("blockchain.scripthash.get_balance", [],
     "blockchain.scripthash.get_balance takes 1 argument, 0 given"),
    ("blockchain.block.header", [1, 2, 3],
     "blockchain.block.header takes 1 to 2 arguments, 3 given"),
    ("blockchain.block.headers", [1],
     "blockchain.block.headers takes 2 to 3 arguments, 1 given"),
    ("server.ping", [1], "server.ping takes no arguments, 1 given"),
    ("blockchain.block.header", {"height": 1, "colour": "red"},
     "blockchain.block.header has no argument named 'colour'"),
    ("blockchain.block.header", {"session": 1, "height": 1},
     "blockchain.block.header has no argument named 'session'"),
    ("blockchain.block.header", {"cp_height": 1},
     "blockchain.block.header needs the argument 'height'"),
])
@pytest_twisted.ensureDeferred
async def test_wrong_arguments_are_named_for_the_method(server, method, params, message):
    srv = await server()
    client = await negotiated(srv.port)
    client.send({"jsonrpc": "2.0", "id": 2, "method": method, "params": params})
    assert await client.reply() == {"jsonrpc": "2.0", "id": 2,
                                    "error": {"code": -32602, "message": message}}
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_server_version_takes_any_name_but_its_session(server):
    srv = await server()
    client = await connect(srv.port)
    client.send({"id": 1, "method": "server.version", "params": {"session": "x"}},
                {"id": 2, "method": "server.version",
                 "params": {"client_name": "t", "protocol_version": "1.4", "future": 1}})
    assert (await client.reply())["error"] == {
        "code": -32602, "message": "server.version has no argument named 'session'"}
    assert (await client.reply())["result"][1] == "1.4"
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_type_error_inside_a_handler_is_an_internal_error(server, monkeypatch):
    """Not a params error: the arguments fit; the handler's body failed."""
    srv = await server()

    def broken(hashX):
        return None + 1
    monkeypatch.setattr(srv.manager.methods.reader, "balance", broken)
    client = await negotiated(srv.port)
    client.send({"id": 2, "method": "blockchain.scripthash.get_balance",
                 "params": [SCRIPTHASH]})
    assert (await client.reply())["error"] == {"code": -32603, "message": "internal error"}
    client.transport.loseConnection()


@pytest.mark.parametrize("request_, reply", [
    ({"jsonrpc": "2.0", "id": 7},
     {"jsonrpc": "2.0", "id": 7, "error": "a request needs a method name"}),
    ({"id": "a", "method": "server.ping", "params": 3},
     {"id": "a", "result": None, "error": "params must be an array or an object"}),
    ({"jsonrpc": "2.1", "id": 8, "method": "server.ping"},
     {"jsonrpc": "2.0", "id": 8, "error": '"jsonrpc" must be "2.0"'}),
    ({"jsonrpc": 2.0, "id": 9, "method": "server.ping"},
     {"jsonrpc": "2.0", "id": 9, "error": '"jsonrpc" must be "2.0"'}),
    ({"jsonrpc": "2.0", "id": [1], "method": "server.ping"},
     {"jsonrpc": "2.0", "id": None, "error": "invalid request id"}),
])
@pytest_twisted.ensureDeferred
async def test_an_invalid_request_is_answered_with_its_id(server, request_, reply):
    srv = await server()
    client = await negotiated(srv.port)
    expected = dict(reply, error={"code": -32600, "message": reply["error"]})
    client.send(request_)
    assert await client.reply() == expected
    client.send([request_, {"id": 3, "method": "server.ping"}])       # in a batch too
    assert await client.reply() == [expected, {"id": 3, "result": None, "error": None}]
    client.transport.loseConnection()


@pytest.mark.parametrize("request_id", [2 ** 53 + 1, 2 ** 64, -2 ** 63 - 1, 10 ** 40])
@pytest_twisted.ensureDeferred
async def test_large_integer_ids_come_back_exact(server, request_id):
    srv = await server()
    client = await negotiated(srv.port)
    client.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "server.ping"})
                .encode() + b"\n")
    assert await client.reply() == {"jsonrpc": "2.0", "id": request_id, "result": None}
    client.send(json.dumps([{"id": request_id, "method": "server.ping"}]).encode() + b"\n")
    assert await client.reply() == [{"id": request_id, "result": None, "error": None}]
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_large_integer_params_reach_the_handler_exact(server):
    srv = await server()
    client = await negotiated(srv.port)
    for height, message in [
            (2 ** 64, "height 18,446,744,073,709,551,616 out of range"),
            (-2 ** 63 - 1, "height should be a non-negative integer, not -9223372036854775809")]:
        client.send(json.dumps({"id": 2, "method": "blockchain.block.header",
                                "params": [height]}).encode() + b"\n")
        assert (await client.reply())["error"] == {"code": 1, "message": message}
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_a_message_of_too_many_arrays_is_refused_before_it_is_parsed(server):
    """Half a million nested arrays took 170 ms to parse and as long to free, while every
    other client waited: past MAX_CONTAINERS a message is refused unparsed."""
    import time
    from electrumx.protocol.jsonrpc import MAX_CONTAINERS
    srv = await server(max_recv=2_000_000)
    client = await negotiated(srv.port)
    nests = b"[" + b",".join([b"[" * 500 + b"]" * 500] * 990) + b"]"
    started = time.monotonic()
    client.send(nests + b"\n")
    reply = await client.reply()
    assert reply["error"] == {"code": -32700, "message": "too many arrays and objects: at "
                              f"most {MAX_CONTAINERS:,d} in one message"}
    assert time.monotonic() - started < 0.1
    within_limit = [{"id": n, "method": "server.ping", "params": []} for n in range(1000)]
    client.send(json.dumps(within_limit).encode() + b"\n")     # 2,001 containers: parsed
    assert len(await client.reply()) == 1000
    client.transport.loseConnection()
