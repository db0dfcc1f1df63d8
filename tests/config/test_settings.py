"""Configuration: sources, precedence, every refusal, and the twistd plugin."""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest

from electrumx.coins import BitcoinRegtest, Litecoin
from electrumx.config import SETTINGS, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = {"DAEMON_URL": "http://user:secretpass@127.0.0.1:8332/", "DB_DIRECTORY": "/tmp/db"}


def load(env=None, options=None, config_file=None, demo=False):
    return load_settings(options or {}, {**BASE, **(env or {})}, config_file, demo)


def refused(env=None, **kwargs):
    with pytest.raises(ConfigError) as info:
        load(env, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults():
    s = load()
    assert s.coin.NAME == "Bitcoin" and s.net == "mainnet"
    assert s.cache_mb == 1200 and s.max_sessions == 1000 and s.max_recv == 1_000_000
    assert s.reorg_limit == 200 and s.max_send == s.coin.DEFAULT_MAX_SEND
    assert s.cost_soft_limit == 1000 and s.cost_hard_limit == 10000
    assert s.request_sleep == 2500 and s.initial_concurrent == 10
    assert s.session_group_by_subnet_ipv4 == 24 and s.session_group_by_subnet_ipv6 == 48
    assert s.peer_discovery == "on" and s.peer_announce is True and s.services == []
    assert s.daemon_urls[0].port == 8332 and s.daemon_urls[0].password == "secretpass"
    assert s.max_subs == 250_000 and s.max_session_subs == 50_000


def test_coin_defaults_follow_the_coin():
    s = load({"COIN": "bitcoin", "NET": "regtest", "DAEMON_URL": "127.0.0.1"})
    assert s.coin is BitcoinRegtest and s.reorg_limit == BitcoinRegtest.REORG_LIMIT
    assert s.daemon_urls[0].port == 18443
    assert load({"COIN": "Litecoin"}).coin is Litecoin


def test_precedence_option_environment_file_default(tmp_path):
    config = tmp_path / "electrumx.conf"
    config.write_text('# comment\n\nCACHE_MB=300\nexport MAX_SESSIONS="77"\nLOG_LEVEL=debug\n')
    s = load({"CACHE_MB": "400"}, {"CACHE_MB": "500"}, str(config))
    assert s.cache_mb == 500 and s.max_sessions == 77 and s.log_level == "debug"
    s = load({"CACHE_MB": "400"}, {}, str(config))
    assert s.cache_mb == 400
    s = load({}, {}, str(config))
    assert s.cache_mb == 300
    assert load().cache_mb == 1200


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("CACHE_MB=10\nNOT_A_SETTING=1\n")
    assert "bad.conf:2: unknown setting NOT_A_SETTING" in refused(config_file=str(bad))
    bad.write_text("just words\n")
    assert "bad.conf:1: expected KEY=VALUE" in refused(config_file=str(bad))
    assert "cannot read" in refused(config_file=str(tmp_path / "missing"))


@pytest.mark.parametrize("name, replacement", [
    ("MAX_SUBSCRIPTIONS", "MAX_SUBS"), ("TCP_PORT", "SERVICES"), ("RPC_PORT", "SERVICES"),
    ("REPORT_HOST", "REPORT_SERVICES"), ("BANDWIDTH_LIMIT", "COST_SOFT_LIMIT"),
    ("EVENT_LOOP_POLICY", "twistd --reactor"),
])
def test_obsolete_variables_name_their_replacement(name, replacement):
    message = refused({name: "1"})
    assert message.startswith(name) and "obsolete" in message and replacement in message


def test_max_subs_are_live_settings():
    s = load({"MAX_SUBS": "10", "MAX_SESSION_SUBS": "5"})
    assert s.max_subs == 10 and s.max_session_subs == 5


@pytest.mark.parametrize("env, expected", [
    ({"COIN": "Nocoin"}, "COIN: unknown coin 'Nocoin'"),
    ({"NET": "moonnet"}, "NET: unknown network 'moonnet' for Bitcoin"),
    ({"DAEMON_URL": ""}, "DAEMON_URL: is required"),
    ({"DAEMON_URL": "ftp://u:secretpass@host"}, "DAEMON_URL: daemon URL scheme"),
    ({"DAEMON_URL": "http://u:secretpass@host:99999"}, "DAEMON_URL: malformed daemon URL"),
    ({"DB_DIRECTORY": ""}, "DB_DIRECTORY: is required"),
    ({"CACHE_MB": "lots"}, "CACHE_MB: 'lots' is not a whole number"),
    ({"MAX_SESSIONS": "-1"}, "MAX_SESSIONS: -1 is below the minimum"),
    ({"MAX_SEND": "1000"}, "MAX_SEND: 1000 is below the minimum of 350000"),
    ({"COST_SOFT_LIMIT": "100", "COST_HARD_LIMIT": "50"}, "COST_HARD_LIMIT: must not be below"),
    ({"PEER_ANNOUNCE": "maybe"}, "PEER_ANNOUNCE: 'maybe' is not a yes/no value"),
    ({"PEER_DISCOVERY": "sometimes"}, "PEER_DISCOVERY: 'sometimes' is not one of"),
    ({"DROP_CLIENT": "(unclosed"}, "DROP_CLIENT: '(unclosed' is not a valid regular"),
    ({"DB_ENGINE": "rocksdb"}, "DB_ENGINE: 'rocksdb' is not one of leveldb"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: 'loud' is not a log level"),
    ({"SERVICES": "tcp://:70000"}, "SERVICES: 'tcp://:70000' has a port out of range"),
    ({"SERVICES": "tcp://:abc"}, "SERVICES: 'tcp://:abc' has a bad port"),
    ({"SERVICES": "gopher://:70"}, "SERVICES: 'gopher://:70' is not protocol://host:port"),
    ({"SERVICES": "tcp://:50001,ws://:50001"}, "use the same address"),
    ({"SERVICES": "rpc://0.0.0.0:8000"}, "must not be public"),
    ({"SERVICES": "ssl://:50002"}, "SSL_CERTFILE: is required"),
    ({"SSL_CERTFILE": "/nonexistent.crt"}, "SSL_CERTFILE: cannot read '/nonexistent.crt'"),
    ({"BANNER_FILE": "/nonexistent"}, "BANNER_FILE: cannot read"),
    ({"REPORT_SERVICES": "rpc://127.0.0.1:8000"}, "never advertised"),
    ({"REPORT_SERVICES": "tcp://192.168.1.2:50001"}, "private or local address"),
])
def test_bad_values_are_refused_with_one_line(env, expected):
    message = refused(env)
    assert expected in message
    assert "secretpass" not in message


def test_services_and_endpoints(tmp_path):
    cert, key = make_certificate(tmp_path)
    s = load({"SERVICES": "tcp://:50001,ssl://127.0.0.1:50002,ws://[::1]:50003,rpc://",
              "SSL_CERTFILE": cert, "SSL_KEYFILE": key,
              "REPORT_SERVICES": "tcp://electrum.example.com:50001"})
    tcp, ssl, ws, rpc = s.services
    assert tcp.endpoint_description() == "tcp:50001"
    assert ssl.endpoint_description(cert, key).startswith(
        "ssl:50002:interface=127.0.0.1:privateKey=")
    assert ws.endpoint_description() == "tcp:50003:interface=\\:\\:1"
    assert str(rpc) == "rpc://localhost:8000"
    assert [str(r) for r in s.report_services] == ["tcp://electrum.example.com:50001"]


def test_a_key_that_does_not_match_the_certificate(tmp_path):
    cert, _key = make_certificate(tmp_path)
    _cert2, key2 = make_certificate(tmp_path / "other")
    message = refused({"SERVICES": "ssl://:50002", "SSL_CERTFILE": cert, "SSL_KEYFILE": key2})
    assert message.startswith("SSL_KEYFILE") and "private key" in message
    message = refused({"SERVICES": "ssl://:50002", "SSL_CERTFILE": key2, "SSL_KEYFILE": key2})
    assert "not a PEM certificate" in message


def test_demo_needs_no_node_or_directory():
    s = load_settings({}, {}, None, demo=True)
    assert s.coin is BitcoinRegtest and s.daemon_urls == [] and s.db_directory
    assert [str(svc) for svc in s.services] == ["tcp://127.0.0.1:51001",
                                                "ws://127.0.0.1:51003"]


def make_certificate(folder):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


TWISTD = "from twisted.scripts.twistd import run; run()"


def twistd(*args, env=None):
    """Run twistd (this Python's) in a subprocess, with the source tree on its path."""
    environ = {k: v for k, v in os.environ.items() if k not in {s.name for s in SETTINGS}}
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    return subprocess.run([sys.executable, "-c", TWISTD, *args], capture_output=True,
                          text=True, env=environ, cwd=ROOT, timeout=60)


def test_twistd_help_lists_every_option():
    result = twistd("electrumx", "--help")
    assert result.returncode == 0, result.stderr
    for setting in SETTINGS:
        assert f"--{setting.option}=" in result.stdout
        assert setting.name in result.stdout.replace("\n", " ").replace(" ", "") or \
            setting.name in result.stdout
    assert "--demo" in result.stdout and "--config=" in result.stdout


def test_twistd_stops_on_a_bad_setting_with_one_line():
    result = twistd("-n", "--pidfile=", "electrumx", "--coin", "Nocoin",
                    "--daemon-url", "http://u:secretpass@127.0.0.1:1/", "--db-directory", "x")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "electrumx: error: COIN: unknown coin 'Nocoin'; known coins: Bitcoin, Litecoin"]
    assert "Traceback" not in result.stdout + result.stderr
    result = twistd("-n", "--pidfile=", "electrumx", env={"TCP_PORT": "50001"})
    assert result.returncode != 0
    assert "TCP_PORT: this ElectrumX setting is obsolete; use SERVICES" in result.stderr
