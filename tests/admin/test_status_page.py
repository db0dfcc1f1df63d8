"""The status page (`/`) and `/stats` on the metrics port, against a live server.

The server is the real Controller indexing the built-in regtest node; clients
connect over TCP and speak the Electrum protocol, one of them under a hostile
name.  The page is loaded by a real headless Chromium (`.ci/run` installs it
and sets ELECTRUMX_REQUIRE_CHROMIUM=1), whose DOM is checked for the live
figures and whose screenshot is kept at tests/artifacts/status-page.png.
"""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.web.client import Agent, readBody

from electrumx.admin.status import (NO_NAME, PEERS_SHOWN, TOP_CLIENTS, UNIDENTIFIED,
                                    RequestRates, peer_listing, session_breakdown,
                                    status_report)
from electrumx.admin.status_page import (CHART_BARS, esc, fee_histogram_svg,
                                         render_status_page)
from electrumx.coins import BitcoinRegtest
from electrumx.config.services import Service
from electrumx.controller import Controller
from electrumx.index.indexer import RECENT_BLOCKS
from electrumx.protocol.stats import ClientCensus, ServerStats
from tests.admin.test_rpc import live, port_of  # noqa: F401 (fixture)
from tests.config.helpers import load
from tests.fixtures.chromium import headless
from tests.fixtures.host import free_port
from tests.fixtures.regtest import wait_for
from tests.protocol.test_transport import connect

HOSTILE = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SCREENSHOT = ARTIFACTS / "status-page.png"


async def identified(server, name, protocol):
    client = await connect(server.tcp_port)
    client.send({"jsonrpc": "2.0", "id": 0, "method": "server.version",
                 "params": [name, protocol]})
    await client.reply()
    return client


async def busy_server(live, monkeypatch):      # noqa: F811 (the fixture, passed on)
    """A live server with a block indexed since it caught up, a mempool, and two
    clients: a wallet subscribed to headers, and a hostile one to a script."""
    # Bins small enough for the regtest mempool to fill several.
    monkeypatch.setattr(BitcoinRegtest, "MEMPOOL_HISTOGRAM_BIN_SIZE", 400)
    server = await live()
    node = server.node.node
    node.mine(1, random_txs=5)
    await wait_for(lambda: server.db.height == node.height, timeout=30)
    added = node.add_random_transactions(40)
    await wait_for(lambda: server.mempool.tx_count == len(added), timeout=30)
    wallet = await identified(server, "electrum/4.5.8", "1.7")
    hostile = await identified(server, HOSTILE, "1.4")
    wallet.send({"jsonrpc": "2.0", "id": 1, "method": "blockchain.headers.subscribe"})
    await wallet.reply()
    scripthash = hashlib.sha256(b"\x51").digest()[::-1].hex()
    hostile.send({"jsonrpc": "2.0", "id": 1, "method": "blockchain.scripthash.subscribe",
                  "params": [scripthash]})
    await hostile.reply()
    server.clients = [wallet, hostile]
    server.status_url = f"http://127.0.0.1:{port_of(server, 'metrics')}"
    return server


async def http_get(url):
    response = await Agent(reactor).request(b"GET", url.encode())
    return response, await readBody(response)


# ---- over HTTP ---------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_stats_json_has_the_live_figures(live, monkeypatch):  # noqa: F811
    server = await busy_server(live, monkeypatch)
    response, body = await http_get(server.status_url + "/stats")
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"application/json"]
    stats = json.loads(body)
    info = stats["server"]
    assert info["db_height"] == server.db.height == info["daemon_height"]
    assert info["caught_up"] is True
    assert info["sessions"] == 2 and info["subscriptions"] == 1     # scripts only
    assert info["mempool_txs"] == server.mempool.tx_count > 0
    assert stats["sessions"] == {
        "by_protocol": [["1.4", 1], ["1.7", 1]],
        "by_client": [[HOSTILE, 1], ["electrum/4.5.8", 1]],
        "clients_not_shown": {"clients": 0, "sessions": 0}}
    by_method = stats["requests_per_sec"]["by_method"]
    assert {"server.version", "blockchain.headers.subscribe",
            "blockchain.scripthash.subscribe"} <= set(by_method)
    assert stats["requests_per_sec"]["window_secs"] > 0
    assert stats["fee_histogram"] == server.mempool.fee_histogram() != []
    blocks = stats["recent_blocks"]
    assert len(blocks) == RECENT_BLOCKS
    assert [b["height"] for b in blocks] == list(range(server.db.height, server.db.height
                                                       - RECENT_BLOCKS, -1))
    # The newest arrived once caught up: flushed and notified on its own.
    assert blocks[0]["flush_and_notify_secs"] is not None and blocks[0]["tx_count"] == 6
    assert blocks[0]["applied_secs"] > 0 and blocks[0]["size"] > 80
    assert stats["sync"]["height"] == server.db.height
    assert stats["indexer_state"] == "caught_up"
    assert stats["peers"] == {"shown": [], "not_shown": 0}

    # A client gone is forgotten; one that has not sent server.version yet is counted.
    wallet, hostile = server.clients
    silent = await connect(server.tcp_port)
    hostile.transport.loseConnection()
    await wait_for(lambda: len(server.sessions.sessions) == 2)
    stats = json.loads((await http_get(server.status_url + "/stats"))[1])
    assert stats["sessions"]["by_client"] == [[UNIDENTIFIED, 1], ["electrum/4.5.8", 1]]
    assert stats["sessions"]["by_protocol"] == [[UNIDENTIFIED, 1], ["1.7", 1]]
    silent.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_page_escapes_client_names_and_forbids_scripts(live, monkeypatch):  # noqa: F811
    server = await busy_server(live, monkeypatch)
    response, body = await http_get(server.status_url + "/")
    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert b"default-src 'none'" in response.headers.getRawHeaders(
        b"content-security-policy")[0]
    page = body.decode()
    assert HOSTILE not in page and "<script" not in page
    assert esc(HOSTILE) in page
    assert '<meta http-equiv="refresh"' in page
    assert "src=" not in page and "<link" not in page        # nothing to load from elsewhere
    missing, _ = await http_get(server.status_url + "/nothing-here")
    assert missing.code == 404
    metrics, text = await http_get(server.status_url + "/metrics")
    assert metrics.code == 200 and b"electrumx_db_height" in text


@pytest_twisted.ensureDeferred
async def test_page_while_syncing_and_with_hostile_peers(live):  # noqa: F811
    server = await live()
    report = status_report(server, RequestRates(reactor, server.sessions.stats))
    report["server"]["caught_up"], report["indexer_state"] = False, "syncing"
    report["sync"].update(height=1000, target=4000, percent=25.0, eta_secs=3960.0)
    # A peer's host and version come from other servers: as hostile as client names.
    peer = {"host": HOSTILE, "tcp_port": 50001, "ssl_port": None, "status": "good",
            "server_version": HOSTILE, "source": "peers.subscribe"}
    report["peers"] = peer_listing([peer] * (PEERS_SHOWN + 3))
    page = render_status_page(report)
    assert '<span class="warn">syncing</span>' in page and "25.0% of the node" in page
    assert 'id="sync-eta">1h06m<' in page
    assert HOSTILE not in page and page.count(esc(HOSTILE)) == 2 * PEERS_SHOWN
    assert "and 3 more" in page


@pytest_twisted.ensureDeferred
async def test_page_answers_before_the_node_does(tmp_path):
    """The metrics port listens from start-up: the page shows a server still waiting."""
    settings = load({"NET": "regtest", "DB_DIRECTORY": str(tmp_path / "db"),
                     "DAEMON_URL": f"http://u:p@127.0.0.1:{free_port()}/"})
    settings.services = [Service("tcp", "127.0.0.1", 0)]
    settings.metrics_port = 0
    controller = Controller(settings, reactor)
    controller.startService()
    try:
        url = f"http://127.0.0.1:{port_of(controller, 'metrics')}"
        response, body = await http_get(url + "/")
        assert response.code == 200
        assert "starting: opening the index, asking the node" in body.decode()
        stats = json.loads((await http_get(url + "/stats"))[1])
        assert stats["server"]["caught_up"] is False and stats["sync"] is None
        assert stats["indexer_state"] == "starting"
        assert stats["recent_blocks"] == [] and stats["fee_histogram"] == []
    finally:
        await controller.stopService()


# ---- in a browser --------------------------------------------------------------------

def text_of(dom: str, element_id: str) -> str:
    """The text of the element with `element_id` (a table cell: no markup inside)."""
    start = dom.index(f'id="{element_id}">') + len(f'id="{element_id}">')
    return dom[start:dom.index("<", start)]


@pytest_twisted.ensureDeferred
async def test_page_in_headless_chromium(live, monkeypatch, tmp_path):  # noqa: F811
    server = await busy_server(live, monkeypatch)
    profile = tmp_path / "chromium"
    dom = (await headless(profile, "--dump-dom", server.status_url + "/")).decode()
    assert text_of(dom, "db-height") == f"{server.db.height:,d}"
    assert text_of(dom, "daemon-height") == f"{server.indexer.prefetcher.daemon_height:,d}"
    assert text_of(dom, "sessions-open") == "2"
    assert text_of(dom, "subscriptions") == "1"
    assert text_of(dom, "mempool-txs") == f"{server.mempool.tx_count:,d}"
    assert "caught up, serving" in dom
    # The hostile name is text in the DOM, not an element: serialised, it is escaped.
    clients = dom[dom.index('id="clients"'):]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in clients
    assert "<script" not in dom
    assert "electrum/4.5.8" in clients
    assert dom.count("<rect ") == len(server.mempool.fee_histogram()) > 1
    assert f"<td class=\"n\">{server.db.height:,d}</td>" in dom[dom.index('id="blocks"'):]

    shot = tmp_path / "status-page.png"
    await headless(profile, f"--screenshot={shot}", "--window-size=1280,1600",
                   "--hide-scrollbars", server.status_url + "/")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)


# ---- the parts -----------------------------------------------------------------------

def test_request_rates_cover_about_the_last_minute():
    clock, stats = task.Clock(), ServerStats()
    rates = RequestRates(clock, stats)
    for _ in range(30):
        stats.request("server.ping", True)
    clock.advance(10)
    assert rates.rates() == (10, {"server.ping": 3.0})     # since start, at first
    for second in range(120):
        clock.advance(1)
        stats.request("blockchain.headers.subscribe", True)
        window, per_method = rates.rates()
    assert 60 <= window < 60 + RequestRates.SAMPLE_SECS
    assert per_method == {"blockchain.headers.subscribe": 1.0}
    assert len(rates._samples) <= RequestRates.WINDOW_SECS / RequestRates.SAMPLE_SECS + 2


def test_session_breakdown_keeps_the_most_common_clients():
    census = ClientCensus()
    census.identified(200, (1, 4), "")
    for i in range(TOP_CLIENTS + 5):
        census.identified(i, (1, 4), f"client-{i}")
    for i in range(100, 103):
        census.identified(i, (1, 7), "electrum/4.5.8")
    breakdown = session_breakdown(census, session_count=TOP_CLIENTS + 5 + 3 + 1 + 2)
    # The most common first (among equals, the first to come), shown by count then name.
    assert breakdown["by_client"][:4] == [("electrum/4.5.8", 3), (UNIDENTIFIED, 2),
                                          (NO_NAME, 1), ("client-0", 1)]
    assert len(breakdown["by_client"]) == TOP_CLIENTS
    assert breakdown["clients_not_shown"] == {"clients": 8, "sessions": 8}
    assert breakdown["by_protocol"] == [(UNIDENTIFIED, 2), ("1.4", TOP_CLIENTS + 6), ("1.7", 3)]


def test_the_census_forgets_closed_sessions():
    census = ClientCensus()
    census.identified(1, (1, 4), "a")
    census.identified(2, (1, 4), "a")
    census.closed(1)
    census.closed(1)            # closed twice: counted once
    census.closed(3)            # never identified
    assert census.by_version == {(1, 4): 1} and census.by_name == {"a": 1}
    assert census.identified_count == 1
    census.closed(2)
    assert census.by_version == census.by_name == {} and census.identified_count == 0


@pytest.mark.parametrize("bins", [0, 3, 200])
def test_fee_chart_has_a_bounded_number_of_bars(bins):
    histogram = [[100.0 - i * 0.5, 1000 + i] for i in range(bins)]
    svg = fee_histogram_svg(histogram)
    assert svg.count("<rect ") == min(bins, CHART_BARS + 1)
