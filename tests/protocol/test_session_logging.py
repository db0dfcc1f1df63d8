"""LOG_SESSIONS summaries, ANON_LOGS, and MAX_SESSIONS against the open-file limit."""

import resource

import pytest
import pytest_twisted
from twisted.logger import formatEvent, globalLogPublisher

from electrumx.protocol.session_manager import FILES_KEPT_FREE, capped_max_sessions
from tests.protocol.test_transport import connect, server, version  # noqa: F401 (fixture)


class Captured(list):
    """Formatted log events while active."""

    def __enter__(self):
        globalLogPublisher.addObserver(self.observe)
        return self

    def __exit__(self, *exc):
        globalLogPublisher.removeObserver(self.observe)

    def observe(self, event):
        self.append(formatEvent(event))


@pytest_twisted.ensureDeferred
async def test_a_summary_line_counts_what_happened_since_the_last(server):
    srv = await server(log_sessions=60)
    client = await connect(srv.port)
    client.send(version(), {"id": 2, "method": "server.ping"}, {"id": 3, "method": "nope"})
    for _ in range(3):
        await client.reply()
    with Captured() as lines:
        srv.manager.log_summary()
        srv.manager.log_summary()
    first, second = [line for line in lines if "sessions in" in line]
    assert first.startswith("1 sessions in 0 groups with 0 subscriptions; in the last 60s "
                            "3 requests, 1 errors,")
    assert "0 requests, 0 errors, 0 bytes in, 0 bytes out" in second
    client.transport.loseConnection()


@pytest.mark.parametrize("anon, shown", [(True, "xx.xx.xx.xx"), (False, "127.0.0.1")])
@pytest_twisted.ensureDeferred
async def test_anon_logs_hide_client_addresses(server, anon, shown):
    srv = await server(anon_logs=anon)
    client = await connect(srv.port)
    client.send(version())
    await client.reply()
    [session] = srv.manager.sessions.values()
    session.log_requests = True
    with Captured() as lines:
        client.send({"id": 2, "method": "server.ping"})
        await client.reply()
    [logged] = [line for line in lines if "server.ping" in line]
    assert f"({shown})" in logged
    client.transport.loseConnection()


def test_max_sessions_fits_the_open_file_limit():
    logged = []
    log = type("Log", (), {"warn": lambda self, text, **kw: logged.append(kw)})()
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert capped_max_sessions(100, log) == 100 and not logged
    impossible = 10 ** 9            # beyond any kernel's open-file ceiling
    capped = capped_max_sessions(impossible, log)
    soft_now, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert capped == soft_now - FILES_KEPT_FREE and soft_now >= soft
    assert logged == [{"configured": impossible, "capped": capped, "soft": soft_now}]


@pytest.mark.parametrize("log_clients", [True, False])
@pytest_twisted.ensureDeferred
async def test_log_clients_gives_a_line_per_client_as_it_identifies_itself(server,
                                                                          log_clients):
    srv = await server(log_clients=log_clients)
    with Captured() as lines:
        client = await connect(srv.port)
        client.send({"id": 1, "method": "server.version", "params": ["Electrum 4.5.8", "1.4"]})
        await client.reply()
        client.send({"id": 2, "method": "server.ping"})
        await client.reply()
    logged = [line for line in lines if "client 'Electrum 4.5.8'" in line]
    if log_clients:
        [line] = logged
        assert line.endswith(": 127.0.0.1 TCP, client 'Electrum 4.5.8', protocol 1.4, "
                             "1 sessions")
    else:
        assert logged == []
    client.transport.loseConnection()
