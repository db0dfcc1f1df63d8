"""The node client over real HTTP on 127.0.0.1: batches, errors, retries, failover."""

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.logger import formatEvent, globalLogPublisher
from zope.interface.verify import verifyObject

from electrumx.coins import BitcoinRegtest
from electrumx.config.daemon_url import DaemonURL, parse_daemon_url
from electrumx.index.daemon import (Daemon, DaemonAuthError, DaemonError, TxLookup,
                                    DaemonMismatchError)
from electrumx.index.db import IndexDB
from electrumx.index.read_api import ChainReader
from electrumx.interfaces import INodeClient
from electrumx.logs import filtered, set_log_level
from tests.fixtures.regtest import wait_for, within
from tests.fixtures.rpcserver import RPCFailure, RPCTestServer

BLOCKS = {h: f"{h:064x}" for h in range(10)}


def handlers():
    def getblock(block_hash, verbosity=1):
        if verbosity:
            return {"hash": block_hash, "tx": ["c0" * 32]}
        return "00" * 100 + block_hash

    def getrawtransaction(txid, verbose=0):
        if txid.startswith("ff"):
            raise RPCFailure(-5, "No such mempool or blockchain transaction")
        return "abcd"

    def sendrawtransaction(raw):
        raise RPCFailure(-26, "insufficient fee")

    def testmempoolaccept(raw_txs, maxfeerate=None):
        if not isinstance(raw_txs, list) or maxfeerate is not None:
            raise RPCFailure(-8, "expected a list of raw transactions and nothing else")
        if "zz" in raw_txs:
            raise RPCFailure(-22, "TX decode failed")
        return [{"txid": raw * 16, "allowed": raw == "aa"} for raw in raw_txs]
    return {
        "getblockcount": lambda: 9,
        "getblockhash": lambda h: BLOCKS[h] if h else BitcoinRegtest.GENESIS_HASH,
        "getblock": getblock,
        "getrawtransaction": getrawtransaction,
        "sendrawtransaction": sendrawtransaction,
        "testmempoolaccept": testmempoolaccept,
        "getblockchaininfo": lambda: {"chain": "regtest"},
        "getnetworkinfo": lambda: {"relayfee": 0.00002},
    }


@pytest.fixture
def servers():
    started = []

    def start(**kwargs):
        s = RPCTestServer(handlers(), **kwargs).start()
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


def daemon_for(*servers_, password=None, **kwargs):
    urls = [parse_daemon_url(s.url(password), 18443) for s in servers_]
    kwargs.setdefault("backoff_start", 0.01)
    kwargs.setdefault("backoff_max", 0.02)
    return Daemon(reactor, urls, **kwargs)


def test_the_daemon_is_a_node_client():
    assert verifyObject(INodeClient, Daemon(reactor, []))


@pytest_twisted.ensureDeferred
async def test_calls_and_batches(servers):
    daemon = daemon_for(servers())
    try:
        assert await daemon.height() == 9
        assert await daemon.block_hashes(1, 3) == [BLOCKS[1], BLOCKS[2], BLOCKS[3]]
        blocks = await daemon.raw_blocks([BLOCKS[1], BLOCKS[2]])
        assert blocks == [bytes(100) + bytes.fromhex(BLOCKS[1]),
                          bytes(100) + bytes.fromhex(BLOCKS[2])]
        txs = await daemon.raw_transactions(["aa" * 32, "ff" * 32])
        assert txs == [bytes.fromhex("abcd"), None]
        assert await daemon.relayfee() == 0.00002
        await daemon.check_network(BitcoinRegtest)
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_rpc_errors_keep_the_node_message(servers):
    daemon = daemon_for(servers())
    try:
        with pytest.raises(DaemonError) as info:
            await daemon.broadcast("00")
        assert info.value.code == -26 and info.value.message == "insufficient fee"
        with pytest.raises(DaemonError) as info:
            await daemon.call("nosuchmethod")
        assert info.value.code == -32601
        assert await daemon.estimatefee(2) == -1     # no estimatesmartfee on this node
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_testmempoolaccept_sends_the_list_and_the_reader_passes_it_through(
        servers, tmp_path):
    daemon = daemon_for(servers())
    db = IndexDB(str(tmp_path), BitcoinRegtest)
    db.open()
    try:
        reader = ChainReader(db, None, daemon)
        assert await reader.test_mempool_accept(["aa", "bb"]) == [
            {"txid": "aa" * 16, "allowed": True}, {"txid": "bb" * 16, "allowed": False}]
        with pytest.raises(DaemonError) as info:
            await reader.test_mempool_accept(["aa", "zz"])
        assert (info.value.code, info.value.message) == (-22, "TX decode failed")
    finally:
        db.close()
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_bad_credentials_are_fatal_and_never_show_the_password(servers, log_lines):
    server = servers()
    daemon = daemon_for(server, password="wrong-but-secret")
    try:
        with pytest.raises(DaemonAuthError) as info:
            await daemon.height()
        assert "refused our credentials" in str(info.value)
        assert "wrong-but-secret" not in str(info.value)
        assert server.resource.requests == 1          # not retried
        assert not any("wrong-but-secret" in line for line in log_lines)
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_warmup_is_waited_out(servers, log_lines):
    server = servers()
    server.resource.warmup_left = 3
    daemon = daemon_for(server)
    try:
        assert await daemon.height() == 9
        assert [line for line in log_lines if "unavailable" in line] == [
            f"node {daemon.current_url} unavailable (warming up: Loading block index...); "
            "retrying"]
        assert sum("answering again" in line for line in log_lines) == 1
    finally:
        await daemon.close()


@pytest.mark.parametrize("mode", ["corrupt", "misshapen", "huge"])
@pytest_twisted.ensureDeferred
async def test_a_reply_that_is_no_answer_is_an_outage_until_the_node_heals(
        servers, log_lines, mode):
    """Garbage is the node's state, not an answer: no DaemonError, retried until it heals."""
    server = servers()
    daemon = daemon_for(server, max_response_bytes=100_000)
    try:
        server.resource.mode = mode
        single, batch = daemon.height(), daemon.block_hashes(1, 3)
        await wait_for(lambda: daemon.failure_count >= 6)
        assert not single.called and not batch.called
        server.resource.mode = None
        assert await within(single, 5) == 9
        assert await within(batch, 5) == [BLOCKS[1], BLOCKS[2], BLOCKS[3]]
        assert sum("unavailable" in line for line in log_lines) == 1
        assert sum("answering again" in line for line in log_lines) == 1
    finally:
        await daemon.close()


@pytest.mark.parametrize("handler,result", [
    ("getblockcount", lambda: "nine"), ("getblockcount", lambda: -1),
    ("getblockhash", lambda h: "not a hash"), ("getblock", lambda h, v=0: "no hex here")])
@pytest_twisted.ensureDeferred
async def test_a_result_of_the_wrong_kind_is_an_outage_too(servers, handler, result):
    server = servers()
    good = server.resource.handlers[handler]
    server.resource.handlers[handler] = result
    daemon = daemon_for(server)
    try:
        calls = [daemon.height(), daemon.block_hashes(1, 2), daemon.raw_blocks([BLOCKS[1]])]
        await wait_for(lambda: daemon.failure_count >= 3)
        server.resource.handlers[handler] = good
        height, hashes, blocks = [await within(d, 5) for d in calls]
        assert (height, hashes) == (9, [BLOCKS[1], BLOCKS[2]])
        assert blocks == [bytes(100) + bytes.fromhex(BLOCKS[1])]
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_a_batch_reply_to_other_ids_is_an_outage(servers):
    server = servers()
    answer = server.resource._answer
    server.resource._answer = lambda r: answer(dict(r, id=[r["id"]]))    # unhashable ids
    daemon = daemon_for(server)
    try:
        d = daemon.block_hashes(1, 2)
        await wait_for(lambda: daemon.failure_count >= 3)
        server.resource._answer = answer
        assert await within(d, 5) == [BLOCKS[1], BLOCKS[2]]
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_garbage_fails_over_to_the_next_node(servers):
    bad, good = servers(), servers()
    bad.resource.mode = "corrupt"
    daemon = daemon_for(bad, good)
    try:
        assert await within(daemon.block_hashes(1, 2), 5) == [BLOCKS[1], BLOCKS[2]]
        assert daemon.current_url.port == good.port_number
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_a_bug_of_ours_is_raised_not_retried_as_an_outage(servers):
    """A DaemonURL built without its port (a bug, never a node's state) fails at once."""
    daemon = Daemon(reactor, [DaemonURL("http", "127.0.0.1", None, "/", "user", "pw")],
                    backoff_start=0.01, backoff_max=0.02)
    try:
        with pytest.raises(ValueError):
            await within(daemon.height(), 5)
        assert daemon.failure_count == 0
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_a_reply_cut_off_by_the_timeout_closes_its_connection(servers):
    """The body of a reply that takes too long is not read on into memory."""
    server = servers()
    daemon = daemon_for(server, timeout=0.2)
    try:
        server.resource.mode = "trickle"
        d = daemon.height()
        await wait_for(lambda: daemon.failure_count >= 1)
        await wait_for(lambda: server.resource.trickle_stopped)
        server.resource.mode = None
        assert await within(d, 5) == 9
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_failover_from_a_dead_node_logs_once_per_outage(servers, log_lines):
    dead, live = servers(), servers()
    daemon = daemon_for(dead, live)
    try:
        await dead.stop()
        assert await daemon.height() == 9
        assert daemon.current_url.port == live.port_number
        outage = [line for line in log_lines if "unavailable" in line]
        assert len(outage) == 1 and live.password not in outage[0]
        # The live one dies too, then comes back: requests wait for it.
        await live.stop()
        await daemon.close()          # the kept-alive connection dies with the node
        d = daemon.height()
        await task.deferLater(reactor, 0.1, lambda: None)
        assert not d.called
        live.start()
        assert await d == 9
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_a_long_outage_is_logged_again_every_few_minutes_and_once_as_it_ends(
        servers, log_lines):
    server = servers()
    daemon = daemon_for(server)
    daemon.outage.reminder_secs = 0.1
    try:
        server.resource.mode = "http500"
        d = daemon.height()
        await wait_for(lambda: sum("unavailable" in line for line in log_lines) >= 3)
        server.resource.mode = None
        assert await within(d, 5) == 9
        outage = [line for line in log_lines if "unavailable" in line]
        assert "for" not in outage[0] and all(" now)" in line for line in outage[1:])
        assert sum("answering again" in line for line in log_lines) == 1
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_http_500_without_json_is_an_outage(servers):
    bad, good = servers(), servers()
    bad.resource.mode = "http500"
    daemon = daemon_for(bad, good)
    try:
        assert await daemon.height() == 9
        assert daemon.current_url.port == good.port_number
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_network_mismatch_is_refused(servers):
    server = servers()
    server.resource.handlers["getblockchaininfo"] = lambda: {"chain": "main"}
    daemon = daemon_for(server)
    try:
        with pytest.raises(DaemonMismatchError, match="on chain 'main'"):
            await daemon.check_network(BitcoinRegtest)
    finally:
        await daemon.close()


def lookups(handlers, txindex, block_hash_arg):
    """getrawtransaction as a node with(out) txindex, taking the block hash or not."""
    asked = []

    def getrawtransaction(txid, verbose=0, *block_hash):
        asked.append((txid, *block_hash))
        if block_hash and not block_hash_arg[0]:
            raise RPCFailure(-1, 'getrawtransaction "txid" ( verbose )')
        if not block_hash and not txindex[0]:
            raise RPCFailure(-5, "No such mempool transaction. Use -txindex or provide a "
                                 "block hash to enable blockchain transaction queries.")
        return "abcd"
    handlers["getrawtransaction"] = getrawtransaction
    return asked


@pytest_twisted.ensureDeferred
async def test_txindex_is_used_when_present_and_never_required(servers):
    server = servers()
    txindex, block_hash_arg = [False], [True]
    asked = lookups(server.resource.handlers, txindex, block_hash_arg)
    daemon = daemon_for(server)
    try:
        server.resource.handlers["getindexinfo"] = lambda: {}
        assert await daemon.probe_tx_lookup() == TxLookup(txindex=False, block_hash_arg=True)
        assert asked == [("c0" * 32, BLOCKS[1])]
        server.resource.handlers["getindexinfo"] = lambda: {"txindex": {"synced": True}}
        assert await daemon.probe_tx_lookup() == TxLookup(txindex=True, block_hash_arg=True)
        assert "with the node's txindex" in daemon.tx_lookup.describe()
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_without_getindexinfo_only_the_block_hash_argument_is_probed(servers):
    """Bitcoin SV's node has no getindexinfo, and finds a transaction with an unspent output
    without txindex: whether it has one stays unknown.  Block 1's coinbase, asked with its
    block hash, tells whether it takes one; with no mined block that stays unknown too."""
    server = servers()
    txindex, block_hash_arg = [False], [False]
    asked = lookups(server.resource.handlers, txindex, block_hash_arg)
    daemon = daemon_for(server)
    try:
        lookup = await daemon.probe_tx_lookup()
        assert lookup == TxLookup(txindex=None, block_hash_arg=False)
        assert asked == [("c0" * 32, BLOCKS[1])]
        assert "then getblock" in lookup.describe()
        block_hash_arg[0] = True
        assert await daemon.probe_tx_lookup() == TxLookup(txindex=None, block_hash_arg=True)
        server.resource.handlers["getblockcount"] = lambda: 0
        assert await daemon.probe_tx_lookup() == TxLookup(txindex=None, block_hash_arg=None)
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_blocks_come_over_a_fresh_connection(servers):
    """Other calls reuse kept-alive connections; getblock batches do not (a node may stall)."""
    server = servers()
    connections = []
    build = server.site.buildProtocol
    server.site.buildProtocol = lambda addr: (connections.append(addr), build(addr))[1]
    daemon = daemon_for(server)
    try:
        for _ in range(2):
            await daemon.raw_blocks([BLOCKS[1], BLOCKS[2]])
        assert len(connections) == 2
        for _ in range(2):
            await daemon.height()
        assert len(connections) == 3
        daemon.fresh_block_connections = False
        for _ in range(2):
            await daemon.raw_blocks([BLOCKS[1]])
        assert len(connections) == 3
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_a_cancelled_request_ends_and_close_gives_up_the_retries(servers):
    """Retries wait for a node that is down; a cancel, or close() at shutdown, ends them."""
    server = servers()
    await server.stop()
    daemon = daemon_for(server)
    try:
        retrying = daemon.height()
        await wait_for(lambda: daemon.failure_count >= 2)
        await daemon.close()
        with pytest.raises(defer.CancelledError):
            await within(retrying, 5)
        connecting = daemon.height()            # cancelled while it connects
        connecting.cancel()
        with pytest.raises(defer.CancelledError):
            await within(connecting, 5)
        made_of_calls = [daemon.estimatefee(2), daemon.probe_tx_lookup()]
        await daemon.close()
        for call in made_of_calls:
            with pytest.raises(defer.CancelledError):
                await within(call, 5)
        failures = daemon.failure_count
        await task.deferLater(reactor, 0.2, lambda: None)
        assert daemon.failure_count == failures
    finally:
        await daemon.close()


@pytest_twisted.ensureDeferred
async def test_connections_to_the_node_log_no_factory_chatter_even_at_debug(servers):
    """Twisted's HTTP client logs a factory starting and stopping for every connection,
    so for every block batch: the server's log filter drops those at every level."""
    raw, shown = [], []
    operators_log = filtered(shown.append)
    globalLogPublisher.addObserver(raw.append)
    globalLogPublisher.addObserver(operators_log)
    set_log_level("debug")
    daemon = daemon_for(servers())
    try:
        for _ in range(3):
            await daemon.raw_blocks([BLOCKS[1], BLOCKS[2]])
        await daemon.height()
    finally:
        await daemon.close()
        set_log_level("info")
        globalLogPublisher.removeObserver(operators_log)
        globalLogPublisher.removeObserver(raw.append)

    def client_factories(events):
        return [formatEvent(e) for e in events
                if e.get("log_namespace", "").startswith("twisted.web.client.")
                and "factory" in formatEvent(e)]
    assert len(client_factories(raw)) >= 6      # a start and a stop for each block batch
    assert client_factories(shown) == []
    assert any("Site" in formatEvent(e) for e in shown)     # other chatter shows at debug
