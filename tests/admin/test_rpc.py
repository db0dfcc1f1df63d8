"""The admin RPC, `electrumx-rpc` and /metrics against a live server on 127.0.0.1.

The server is the real Controller indexing the built-in regtest node in this
process; `electrumx-rpc` runs as a real subprocess, and one test stops a real
`twistd electrumx` process with it.
"""

import json
import os
import sys

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, endpoints, protocol, reactor, utils
from twisted.web.client import Agent, readBody

from electrumx.admin.cli import format_amount
from electrumx.admin.rpc_server import AdminSession
from electrumx.chain.hashes import hash_to_hex_str
from electrumx.coins import BitcoinRegtest
from electrumx.config.services import Service
from electrumx.controller import Controller
from electrumx.listener import Listener
from tests.config.helpers import load
from tests.fixtures.host import free_port
from tests.fixtures.regtest import tiny_chain, wait_for, within
from tests.fixtures.twistd import TwistdProcess
from tests.protocol.test_transport import LineClient, connect


class AdminClient(LineClient):
    """One admin connection; `call` sends a request and returns the reply."""

    async def call(self, command, *params):
        self.send({"jsonrpc": "2.0", "id": 1, "method": command, "params": list(params)})
        return await self.reply()


def port_of(controller, label):
    return next(s.port.getHost().port for s in controller
                if isinstance(s, Listener) and s.label == label and s.port is not None)


@pytest.fixture
def live(regtest_node, tmp_path):
    """A started Controller serving tcp, rpc and metrics, caught up with the tiny chain."""
    controllers = []

    async def start():
        settings = load({"NET": "regtest", "DB_DIRECTORY": str(tmp_path / "db"),
                         "DAEMON_URL": regtest_node.url, "DAEMON_POLL_INTERVAL_BLOCKS": "50",
                         "DAEMON_POLL_INTERVAL_MEMPOOL": "50"})
        settings.services = [Service("tcp", "127.0.0.1", 0), Service("rpc", "127.0.0.1", 0)]
        settings.metrics_port = 0
        controller = Controller(settings, reactor)
        controller.startService()
        controllers.append(controller)
        await within(controller.indexer.when_caught_up(), 60)
        await wait_for(lambda: controller.sessions.ports)
        controller.rpc_port = port_of(controller, "admin-rpc")
        controller.tcp_port = controller.sessions.ports[0].getHost().port
        controller.node = regtest_node
        return controller
    yield start
    for controller in controllers:
        pytest_twisted.blockon(controller.stopService())


async def admin(controller):
    client = AdminClient()
    await endpoints.connectProtocol(
        endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", controller.rpc_port), client)
    return client


async def wallet_session(controller, source="127.0.0.1", name="wallet/1.0"):
    client = await connect(controller.tcp_port, source)
    client.send({"jsonrpc": "2.0", "id": 0, "method": "server.version", "params": [name, "1.4"]})
    await client.reply()
    return client


async def cli(controller, *args):
    """Run `electrumx-rpc` against the live server: (exit code, stdout, stderr)."""
    out, err, code = await utils.getProcessOutputAndValue(
        sys.executable, ["-m", "electrumx.admin.cli", "--port", str(controller.rpc_port),
                         *args], env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    return code, out.decode(), err.decode()


# ---- the commands --------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_getinfo_describes_the_server(live):
    server = await live()
    client = await admin(server)
    info = (await client.call("getinfo"))["result"]
    assert info["db_height"] == server.node.node.height == info["daemon_height"]
    assert info["db_tip"] == hash_to_hex_str(server.db.tip)
    assert info["db_tx_count"] == server.db.state.tx_count
    assert info["applied_height"] == info["db_height"]     # caught up: every block flushed
    assert info["caught_up"] is True and info["coin"] == "Bitcoin" and info["network"] == "regtest"
    assert info["pid"] == os.getpid() and info["rss_mb"] > 0
    assert info["daemon"].startswith("http://regtest:***@127.0.0.1:")
    assert info["sessions"] == 0 and info["banned"] == 0
    # The built-in node runs without txindex here, as bitcoind's default: none is needed.
    assert info["tx_lookup"] == ("getrawtransaction with the block hash from our "
                                        "index (without the node's txindex)")
    assert sorted((await client.call("help"))["result"]) == (await client.call("help"))["result"]


@pytest_twisted.ensureDeferred
async def test_sessions_log_and_disconnect(live):
    server = await live()
    wallet = await wallet_session(server, name="wallet/4.3")
    client = await admin(server)
    rows = (await client.call("sessions"))["result"]
    assert [(r["address"], r["client"], r["protocol"], r["requests"]) for r in rows] == [
        ("127.0.0.1", "wallet/4.3", "1.4", 1)]
    session_id = rows[0]["id"]
    assert (await client.call("log", [session_id]))["result"] == {str(session_id): True}
    assert server.sessions.sessions[session_id].log_requests
    missing = await client.call("log", [999])
    assert missing["error"]["message"] == "no session 999"
    assert (await client.call("disconnect", [session_id]))["result"] == {"closed": [session_id]}
    await within(wallet.closed)
    assert (await client.call("sessions"))["result"] == []


@pytest_twisted.ensureDeferred
async def test_groups_show_shared_cost(live):
    server = await live()
    server.sessions.groups.exempt_private = False      # loopback stands in for a subnet
    a = await wallet_session(server, "127.0.0.1")
    b = await wallet_session(server, "127.0.0.9")
    client = await admin(server)
    groups = (await client.call("groups"))["result"]
    assert [(g["name"], len(g["sessions"])) for g in groups] == [("127.0.0.0/24", 2)]
    assert groups[0]["cost"] > 0
    assert (await client.call("disconnect", ["127.0.0.0/24"]))["result"]["closed"]
    await within(a.closed)
    await within(b.closed)


@pytest_twisted.ensureDeferred
async def test_ban_kick_and_unban(live, tmp_path):
    server = await live()
    first = await wallet_session(server, "127.0.0.1")
    other = await wallet_session(server, "127.0.0.2")
    client = await admin(server)
    kicked = (await client.call("kick", ["127.0.0.2"]))["result"]["closed"]
    assert len(kicked) == 1
    await within(other.closed)
    banned = (await client.call("ban", ["127.0.0.0/30"]))["result"]
    assert banned["banned"] == ["127.0.0.0/30"] and len(banned["closed"]) == 1
    await within(first.closed)
    assert json.loads((tmp_path / "db" / "bans.json").read_text()) == ["127.0.0.0/30"]
    refused = await connect(server.tcp_port, "127.0.0.3")
    await within(refused.closed)                      # turned away at once
    allowed = await wallet_session(server, "127.0.0.4")
    assert (await client.call("banned"))["result"] == ["127.0.0.0/30"]
    assert "not banned: 127.0.0.9" in (await client.call("unban", ["127.0.0.9"]))["error"][
        "message"]
    assert "not an IP address" in (await client.call("ban", ["nonsense"]))["error"]["message"]
    assert (await client.call("unban", ["127.0.0.0/30"]))["result"] == {"banned": []}
    again = await wallet_session(server, "127.0.0.3")
    for c in (allowed, again):
        c.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_query_matches_the_generated_chain(live, tmp_path_factory):
    server = await live()
    _blocks, expected = tiny_chain(tmp_path_factory)
    busiest = max(expected.values(), key=lambda e: len(e["history"]))
    address = BitcoinRegtest.script_to_address(bytes.fromhex(busiest["script"]))
    client = await admin(server)
    by_address, by_script = (await client.call("query", [address, busiest["script"]]))["result"]
    for answer in (by_address, by_script):
        assert [[h["txid"], h["height"]] for h in answer["history"]] == busiest["history"]
        assert answer["balance"] == {"confirmed": busiest["balance"], "unconfirmed": 0}
        assert sorted([u["txid"], u["out"], u["height"], u["value"]]
                      for u in answer["utxos"]) == sorted(busiest["utxos"])
    limited = (await client.call("query", [address], 1))["result"][0]
    assert len(limited["history"]) == 1 and limited["history_truncated"] is True
    bad = await client.call("query", ["not-an-address"])
    assert "neither a Bitcoin regtest address nor a hex script" in bad["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_daemon_url_rotates_and_replaces(live):
    server = await live()
    client = await admin(server)
    single = await client.call("daemon_url")
    assert "nothing to rotate to" in single["error"]["message"]
    url = server.node.url
    two = (await client.call("daemon_url", [url, url.replace("regtest@", "regtest2@")]))
    assert len(two["result"]["urls"]) == 2
    assert all(u.startswith("http://regtest:***@") for u in two["result"]["urls"])
    rotated = (await client.call("daemon_url"))["result"]
    assert rotated["current"] == two["result"]["urls"][1]
    bad = await client.call("daemon_url", ["ftp://nowhere"])
    assert bad["error"]["code"] == 1
    await client.call("daemon_url", [url])


@pytest_twisted.ensureDeferred
async def test_reorg_backs_out_blocks_and_the_index_follows_the_node_again(live):
    server = await live()
    client = await admin(server)
    height, tip = server.db.height, server.db.tip
    assert (await client.call("reorg", 2))["result"] == {"height": height - 2}
    await wait_for(lambda: server.db.height == height, timeout=30)
    assert server.db.tip == tip
    too_deep = await client.call("reorg", 10_000)
    assert "cannot back out 10000 blocks" in too_deep["error"]["message"]
    assert "positive whole number" in (await client.call("reorg", -1))["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_flush_cache_compact_and_loglevel(live):
    server = await live()
    client = await admin(server)
    assert (await client.call("flush"))["result"]["height"] == server.db.height
    cache = (await client.call("cache"))["result"]
    assert set(cache) == {"history", "merkle_trees", "history_json", "status", "raw_tx",
                          "unflushed"}
    compacted = (await client.call("compact"))["result"]
    assert compacted["bytes_before"] > 0 and compacted["bytes_after"] > 0
    assert (await client.call("loglevel", "debug"))["result"] == {"level": "debug"}
    assert "unknown log level" in (await client.call("loglevel", "loud"))["error"]["message"]
    await client.call("loglevel", "info")
    # Peer discovery is on (regtest has no seeds); a loopback peer is refused, offline.
    assert "loopback host 127.0.0.1" in (await client.call(
        "add_peer", "127.0.0.1 t50001"))["error"]["message"]
    assert (await client.call("peers"))["result"] == []


@pytest_twisted.ensureDeferred
async def test_bad_admin_requests_get_errors_not_disconnects(live):
    server = await live()
    client = await admin(server)
    client.send(b"{not json\n")
    assert (await client.reply())["error"]["code"] == -32700
    assert (await client.call("no_such_command"))["error"]["code"] == -32601
    assert (await client.call("getinfo", 1, 2))["error"]["code"] == -32602
    client.send([{"jsonrpc": "2.0", "id": 1, "method": "banned"},
                 {"jsonrpc": "2.0", "id": 2, "method": "nope"}])
    batch = await client.reply()
    assert [("result" in r, r["id"]) for r in batch] == [(True, 1), (False, 2)]
    assert (await client.call("banned"))["result"] == []


def test_an_oversized_admin_line_is_refused():
    from twisted.internet.testing import StringTransport
    session = AdminSession(commands=None)
    transport = StringTransport()
    session.makeConnection(transport)
    session.dataReceived(b"x" * (AdminSession.MAX_LENGTH + 10))
    assert b"request too long" in transport.value() and transport.disconnecting


# ---- electrumx-rpc -------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_cli_prints_tables_and_json(live):
    server = await live()
    wallet = await wallet_session(server, name="cli-test/1")
    code, out, err = await cli(server, "getinfo")
    assert code == 0 and err == ""
    assert f"db_height        {server.db.height}" in out
    code, out, _ = await cli(server, "sessions")
    header, row = out.splitlines()
    assert header.split()[:4] == ["ID", "ADDRESS", "CLIENT", "PROTOCOL"]
    assert row.split()[1:4] == ["127.0.0.1", "cli-test/1", "1.4"]
    code, out, _ = await cli(server, "--json", "getinfo")
    assert code == 0 and json.loads(out)["db_height"] == server.db.height
    code, out, _ = await cli(server, "banned")
    assert (code, out.strip()) == (0, "(none)")
    wallet.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_cli_exit_codes_and_messages(live):
    server = await live()
    code, _out, err = await cli(server, "log", "999")
    assert code == 1 and "electrumx-rpc: log: no session 999" in err
    code, _out, err = await cli(server, "getinfo", "extra")
    assert code == 2 and "getinfo takes no arguments" in err
    code, _out, err = await cli(server, "frobnicate")
    assert code == 2 and "invalid choice" in err
    closed_port = free_port()
    out, err, code = await utils.getProcessOutputAndValue(
        sys.executable, ["-m", "electrumx.admin.cli", "--port", str(closed_port), "getinfo"],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert code == 1 and b"connection refused" in err and b"is electrumx running" in err


@pytest_twisted.ensureDeferred
async def test_cli_options_may_follow_the_command(live, tmp_path_factory):
    server = await live()
    code, out, err = await cli(server, "getinfo", "--json")
    assert code == 0 and json.loads(out)["db_height"] == server.db.height, err
    code, out, err = await cli(server, "kick", "--json", "127.0.0.9")
    assert (code, json.loads(out)) == (0, {"closed": []}), err
    _blocks, expected = tiny_chain(tmp_path_factory)
    scripts = [e["script"] for e in expected.values()][:2]
    code, out, err = await cli(server, "query", scripts[0], "--json", "--limit", "1",
                               scripts[1])
    assert code == 0, err
    assert [item["script"] for item in json.loads(out)] == scripts
    assert all(len(item["history"]) <= 1 for item in json.loads(out))


@pytest_twisted.ensureDeferred
async def test_query_shows_amounts_in_the_coins_unit_and_in_sat(live, tmp_path_factory):
    server = await live()
    _blocks, expected = tiny_chain(tmp_path_factory)
    busiest = max(expected.values(), key=lambda e: len(e["history"]))
    address = BitcoinRegtest.script_to_address(bytes.fromhex(busiest["script"]))
    code, out, err = await cli(server, "query", address)
    assert code == 0, err
    whole, fraction = divmod(busiest["balance"], 100_000_000)
    assert (f"  balance: {whole}.{fraction:08d} XTN ({busiest['balance']} sat) confirmed, "
            "0.00000000 XTN (0 sat) unconfirmed") in out.splitlines(), out
    for txid, out_index, height, value in busiest["utxos"]:
        whole, fraction = divmod(value, 100_000_000)
        assert (f"    {txid}:{out_index}  height {height}  value {whole}.{fraction:08d} XTN "
                f"({value} sat)") in out.splitlines(), out
    code, out, _err = await cli(server, "--json", "query", address)
    item = json.loads(out)[0]
    assert (item["unit"], item["sat_per_unit"]) == ("XTN", 100_000_000)
    assert item["balance"]["confirmed"] == busiest["balance"]


def test_amounts_are_exact_and_signed():
    assert format_amount(0, "BTC", 100_000_000) == "0.00000000 BTC (0 sat)"
    assert format_amount(2_100_000_000_000_001, "BTC", 100_000_000) == (
        "21000000.00000001 BTC (2100000000000001 sat)")
    assert format_amount(-1_500, "LTC", 100_000_000) == "-0.00001500 LTC (-1500 sat)"


class ClosedReader(protocol.ProcessProtocol):
    """A reader that goes away at once, as `head` does once it has its lines."""

    def __init__(self):
        self.err = b""
        self.ended = defer.Deferred()

    def connectionMade(self):
        self.transport.closeStdout()

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)


@pytest_twisted.ensureDeferred
async def test_cli_into_a_closed_pipe_ends_quietly(live):
    server = await live()
    reader = ClosedReader()
    reactor.spawnProcess(reader, sys.executable, [
        sys.executable, "-m", "electrumx.admin.cli", "--port", str(server.rpc_port), "getinfo"],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert await within(reader.ended, 30) == 0
    assert reader.err == b""


@pytest_twisted.ensureDeferred
async def test_cli_stops_a_real_server_cleanly(regtest_node, tmp_path):
    rpc_port = free_port()
    server = TwistdProcess.start(
        {"COIN": "Bitcoin", "NET": "regtest", "DAEMON_URL": regtest_node.url,
         "DB_DIRECTORY": str(tmp_path / "db"), "SERVICES": f"rpc://127.0.0.1:{rpc_port}",
         "ALLOW_ROOT": "yes"}, tmp_path)
    try:
        await server.wait_for_output(b"caught up")
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable, ["-m", "electrumx.admin.cli", "--port", str(rpc_port), "stop"],
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        assert (code, out.strip()) == (0, b"stopping"), err
        await wait_for(lambda: server.ended, timeout=30)
        assert server.exit_code == 0
        assert b"stopping at the admin's request" in server.output
    finally:
        await server.stop()


# ---- metrics ---------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_metrics_parse_as_prometheus_text(live):
    server = await live()
    wallet = await wallet_session(server)
    wallet.send({"id": 1, "method": "blockchain.block.header", "params": [1]},
                {"id": 2, "method": "no.such.method"})
    await wallet.reply()
    await wallet.reply()
    port = port_of(server, "metrics")
    response = await Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/metrics".encode())
    assert response.headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
    text = (await readBody(response)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = {name: [(s.labels, s.value) for s in f.samples] for name, f in families.items()}
    assert value["electrumx_db_height"] == [({}, server.db.height)]
    assert value["electrumx_sync_lag_blocks"] == [({}, 0)]
    assert value["electrumx_sessions"] == [({}, 1)]
    requests = dict((s["method"], v) for s, v in value["electrumx_requests"])
    assert requests == {"server.version": 1, "blockchain.block.header": 1, "(unknown)": 1}
    assert value["electrumx_errors"] == [({"code": "-32601"}, 1)]
    assert value["electrumx_refused_per_ip"] == [({}, 0)]
    assert value["electrumx_timed_out"] == [({"phase": "handshake"}, 0),
                                            ({"phase": "unidentified"}, 0),
                                            ({"phase": "partial_request"}, 0)]
    assert families["electrumx_flush_seconds"].type == "summary"
    assert dict(families["electrumx_flush_seconds"].samples[0].labels) == {}
    for name in ("electrumx_mempool_transactions", "electrumx_daemon_errors",
                 "electrumx_read_cache_entries", "electrumx_resident_memory_bytes",
                 "electrumx_block_processing_seconds", "electrumx_received_bytes",
                 "electrumx_sent_bytes", "electrumx_unflushed_cache_bytes"):
        assert name in families, name
    wallet.transport.loseConnection()
