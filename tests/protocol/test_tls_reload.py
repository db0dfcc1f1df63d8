"""The TLS certificate is reloaded without a restart: on SIGHUP, and when its files change.

New connections get the new certificate, the sessions already open keep
theirs, and a new pair that does not load is refused with one log line while
the old certificate stays in use.  Clients are real TLS clients on 127.0.0.1
that verify the server against the certificate they expect.
"""

import os
import shutil
import signal

import pytest_twisted
from twisted.internet import endpoints, reactor, ssl, task

from electrumx.config.services import Service
from electrumx.protocol.tls import WATCH_SECS, ReloadableTLS
from tests.config.certs import self_signed
from tests.fixtures.host import free_port
from tests.fixtures.twistd import TwistdProcess
from tests.protocol.test_transport import LineClient, server, version  # noqa: F401 (fixture)


async def tls_client(port, certfile):
    """A session over TLS that trusts only `certfile`; fails to connect otherwise."""
    client = LineClient()
    trust = ssl.optionsForClientTLS("localhost", ssl.Certificate.loadPEM(
        open(certfile, "rb").read()))
    await endpoints.connectProtocol(endpoints.wrapClientTLS(
        trust, endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)), client)
    client.send(version())
    await client.reply()
    return client


async def refused_by(port, certfile) -> bool:
    """True if a client trusting only `certfile` cannot verify the server."""
    try:
        client = await tls_client(port, certfile)
    except Exception:
        return True
    client.transport.loseConnection()
    return False


def replace(live, new):
    """Put the certificate and key `new` in the place of `live`, as a renewal does."""
    for source, target in zip(new, live):
        shutil.copyfile(source, target + ".new")
        os.replace(target + ".new", target)


@pytest_twisted.ensureDeferred
async def test_new_files_serve_new_clients_and_old_sessions_go_on(server, tmp_path):
    live = self_signed(tmp_path / "live")
    first = self_signed(tmp_path / "first")
    replace(live, first)
    srv = await server(services=[Service("ssl", "127.0.0.1", 0)], ssl_certfile=live[0],
                       ssl_keyfile=live[1])
    tls = srv.manager.tls
    old_session = await tls_client(srv.port, first[0])

    renewed = self_signed(tmp_path / "renewed")
    replace(live, renewed)
    tls.reload_if_changed()                       # what the file watcher does every minute
    assert tls.reloads == 1
    new_session = await tls_client(srv.port, renewed[0])
    assert await refused_by(srv.port, first[0])
    old_session.send(version(2))                  # the session opened before still works
    assert (await old_session.reply())["id"] == 2

    tls.reload_if_changed()                       # unchanged files: nothing to do
    assert tls.reloads == 1
    for session in (old_session, new_session):
        session.transport.loseConnection()


def test_the_watcher_reloads_changed_files_every_watch_period_until_stopped(tmp_path):
    live = self_signed(tmp_path / "live")
    clock = task.Clock()
    tls = ReloadableTLS(*live, clock)
    tls.start_watching()
    replace(live, self_signed(tmp_path / "renewed"))
    clock.advance(WATCH_SECS - 1)
    assert tls.reloads == 0
    clock.advance(1)
    assert tls.reloads == 1
    tls.stop_watching()
    replace(live, self_signed(tmp_path / "again"))
    clock.advance(WATCH_SECS * 2)
    assert tls.reloads == 1 and clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_a_bad_new_pair_is_refused_and_the_old_one_stays(server, tmp_path, caplog):
    live = self_signed(tmp_path / "live")
    good = self_signed(tmp_path / "good")
    replace(live, good)
    srv = await server(services=[Service("ssl", "127.0.0.1", 0)], ssl_certfile=live[0],
                       ssl_keyfile=live[1])
    tls = srv.manager.tls
    other = self_signed(tmp_path / "other")
    shutil.copyfile(other[0], live[0])            # a new certificate, the old key
    assert not tls.reload("test")
    open(live[1], "w").write("half a key")
    assert not tls.reload("test")
    assert tls.reloads == 0
    client = await tls_client(srv.port, good[0])  # still the good certificate
    client.transport.loseConnection()
    replace(live, other)                          # the renewal completes: it loads
    assert tls.reload("test")
    client = await tls_client(srv.port, other[0])
    client.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_sighup_reloads_a_real_server(tmp_path):
    live = self_signed(tmp_path / "live")
    first = self_signed(tmp_path / "first")
    replace(live, first)
    port = free_port()
    process = TwistdProcess.start(
        {"SERVICES": f"ssl://127.0.0.1:{port},tcp://127.0.0.1:{free_port()}",
         "SSL_CERTFILE": live[0], "SSL_KEYFILE": live[1],
         "XDG_CACHE_HOME": str(tmp_path / "cache")},
        tmp_path, args=["--demo", "--db-directory", str(tmp_path / "db")],
        twistd_args=["--logfile=-"])
    try:
        await process.wait_for_output(b"serving ssl on")
        old_session = await tls_client(port, first[0])
        renewed = self_signed(tmp_path / "renewed")
        replace(live, renewed)
        process.transport.signalProcess(signal.SIGHUP)
        await process.wait_for_output(b"TLS certificate reloaded (SIGHUP)")
        assert not process.ended
        new_session = await tls_client(port, renewed[0])
        old_session.send(version(2))
        assert (await old_session.reply())["id"] == 2
        for session in (old_session, new_session):
            session.transport.loseConnection()
    finally:
        await process.stop()
    assert process.exit_code == 0, process.output.decode(errors="replace")
