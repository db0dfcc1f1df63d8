"""Authenticating to the node by its cookie file, which it rewrites at every start.

The node here is the built-in regtest node in-process, on 127.0.0.1, with
user `__cookie__` and a random password, as bitcoind's cookie authentication
has; a restart is a new node on the same port with a new password and a new
file, as bitcoind writes one.
"""

import os

import pytest_twisted
from twisted.internet import reactor

from electrumx.coins import BitcoinRegtest
from electrumx.config.daemon_url import default_cookie_path, parse_daemon_urls
from electrumx.regtest.node import RegtestNode
from electrumx.regtest.service import RunningNode
from tests.config.helpers import load
from tests.fixtures.regtest import IndexerHarness, tiny_chain, wait_for


def cookie_node(chain, cookie_file, port=0):
    """A node accepting only a fresh cookie, which it writes into `cookie_file`."""
    password = os.urandom(16).hex()
    cookie_file.write_text(f"__cookie__:{password}")
    return RunningNode(reactor, chain, "127.0.0.1", port, "__cookie__", password).listen()


def harness_reading(cookie_file, port, path):
    urls = parse_daemon_urls(f"http://127.0.0.1:{port}/", 18443, str(cookie_file))
    harness = IndexerHarness(path, [])
    harness.daemon.set_urls(urls)
    return harness.start()


@pytest_twisted.ensureDeferred
async def test_a_node_restarted_with_a_new_cookie_is_followed(tmp_path_factory, tmp_path,
                                                              log_lines):
    chain = RegtestNode(tiny_chain(tmp_path_factory)[0], 20, reactor)
    cookie_file = tmp_path / ".cookie"
    first = cookie_node(chain, cookie_file)
    port = first.port_number
    harness = harness_reading(cookie_file, port, tmp_path / "index")
    try:
        assert await harness.caught_up() == 20
        await first.stop()
        chain.reveal(30)
        await wait_for(lambda: any("unavailable" in line for line in log_lines))
        second = cookie_node(chain, cookie_file, port)      # restarted: a new cookie...
        cookie = cookie_file.read_text()
        cookie_file.unlink()                                # ...not written yet
        try:
            await wait_for(lambda: any("refused the cookie of" in line for line in log_lines))
            cookie_file.write_text(cookie)
            await wait_for(lambda: harness.db.height == 30)
            assert harness.fatal == []
            assert any("accepts the cookie of" in line for line in log_lines)
        finally:
            await second.stop()
    finally:
        await harness.stop()


@pytest_twisted.ensureDeferred
async def test_a_wrong_cookie_is_waited_out_not_fatal(tmp_path_factory, tmp_path, log_lines):
    chain = RegtestNode(tiny_chain(tmp_path_factory)[0], 20, reactor)
    cookie_file = tmp_path / ".cookie"
    node = cookie_node(chain, cookie_file)
    good = cookie_file.read_text()
    cookie_file.write_text("__cookie__:not-the-one")
    harness = harness_reading(cookie_file, node.port_number, tmp_path / "index")
    try:
        await wait_for(lambda: any("refused the cookie of" in line for line in log_lines))
        assert harness.db.height == -1 and harness.fatal == []
        cookie_file.write_text(good)
        assert await harness.caught_up() == 20
    finally:
        await harness.stop()
        await node.stop()


def test_urls_without_credentials_take_the_cookie_and_the_default_path(tmp_path):
    settings = load({"NET": "regtest", "DB_DIRECTORY": str(tmp_path),
                     "DAEMON_URL": "http://127.0.0.1:18443/,http://u:p@10.0.0.2/"})
    cookie_url, password_url = settings.daemon_urls
    assert cookie_url.cookie.path == default_cookie_path(BitcoinRegtest) == os.path.join(
        os.path.expanduser("~"), ".bitcoin", "regtest", ".cookie")
    assert password_url.cookie is None and password_url.userinfo == b"u:p"
    assert str(cookie_url) == "http://127.0.0.1:18443/"
    settings = load({"NET": "regtest", "DB_DIRECTORY": str(tmp_path),
                     "DAEMON_URL": "127.0.0.1", "DAEMON_COOKIE_FILE": "/var/lib/node/.cookie"})
    assert settings.daemon_urls[0].cookie.path == "/var/lib/node/.cookie"


@pytest_twisted.ensureDeferred
async def test_a_cookie_file_not_there_yet_is_waited_for(tmp_path_factory, tmp_path,
                                                          log_lines):
    """The server may start before the node has written its cookie (systemd ordering)."""
    chain = RegtestNode(tiny_chain(tmp_path_factory)[0], 20, reactor)
    cookie_file = tmp_path / ".cookie"
    node = cookie_node(chain, cookie_file)
    cookie = cookie_file.read_text()
    cookie_file.unlink()
    harness = harness_reading(cookie_file, node.port_number, tmp_path / "index")
    try:
        await wait_for(lambda: any("cannot read the node's cookie" in line
                                   for line in log_lines))
        cookie_file.write_text(cookie)
        assert await harness.caught_up() == 20
        assert harness.fatal == []
    finally:
        await harness.stop()
        await node.stop()
