"""`twistd electrumx`: options, makeService, and twistd itself in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from twisted.application import service

from electrumx import tap
from electrumx.config import SETTINGS
from electrumx.hangup import ReloadOnHangup
from electrumx.shutdown import StopOnSignals

from tests.config.helpers import BASE, PASSWORD

ROOT = Path(__file__).resolve().parents[2]
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def parse(*args):
    options = tap.Options()
    options.parseOptions(list(args))
    return options


def test_one_option_per_setting():
    options = parse("--cache-mb", "300", "--daemon-url=http://x", "--demo", "--config", "f")
    texts = options.setting_texts()
    assert set(texts) == {s.name for s in SETTINGS}
    assert texts["CACHE_MB"] == "300" and texts["DAEMON_URL"] == "http://x"
    assert texts["MAX_SESSIONS"] is None
    assert options["demo"] and options["config"] == "f"


def test_options_win_over_the_environment(tmp_path):
    config = tmp_path / "x.conf"
    config.write_text("CACHE_MB=300\nLOG_SESSIONS=5\n")
    options = parse("--cache-mb", "100", "--config", str(config))
    s = tap.settings_from_options(options, {**BASE, "CACHE_MB": "200"})
    assert (s.cache_mb, s.log_sessions) == (100, 5)


@pytest.fixture
def built(monkeypatch):
    """makeService with the controller's build_service replaced by a recorder of
    (settings, reactor, the root service it returned)."""
    calls = []

    def build_service(settings, reactor):
        root = service.MultiService()
        root.reload = lambda: None
        calls.append((settings, reactor, root))
        return root

    monkeypatch.setattr("electrumx.controller.build_service", build_service)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return calls


def test_make_service_builds_the_tree_from_the_settings(built, monkeypatch):
    from twisted.internet import reactor
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    root = tap.makeService(parse("--max-sessions", "7", "--log-level", "warning"))
    [(settings, given_reactor, built_root)] = built
    assert settings.max_sessions == 7 and given_reactor is reactor
    assert root is built_root and [type(s) for s in root] == [StopOnSignals, ReloadOnHangup]


def test_make_service_stops_with_one_line(built, capsys):
    with pytest.raises(SystemExit) as info:
        tap.makeService(parse("--coin", "Nocoin"))
    assert info.value.code == 2
    assert capsys.readouterr().err == ("electrumx: error: COIN: unknown coin 'Nocoin'; known "
                                       "coins: Bitcoin, BitcoinSV, Litecoin\n")
    assert built == []


def test_root_is_refused_unless_allowed(built, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(SystemExit):
        tap.makeService(parse())
    assert capsys.readouterr().err.startswith("electrumx: error: ALLOW_ROOT: refusing to run "
                                              "as root")
    tap.makeService(parse("--allow-root", "yes"))
    tap.makeService(parse("--demo"))
    assert len(built) == 2


def twistd_environment(env=None) -> dict:
    """This environment without any server setting, the source tree on the path, and `env`."""
    environ = {k: v for k, v in os.environ.items() if k not in {s.name for s in SETTINGS}}
    environ["PYTHONPATH"] = str(ROOT)
    environ.update(env or {})
    return environ


def twistd(*args, env=None, cwd, timeout=60):
    """Run twistd (this Python's) in a subprocess, with the source tree on its path."""
    return subprocess.run([*TWISTD, *args], capture_output=True, text=True,
                          env=twistd_environment(env), cwd=cwd, timeout=timeout)


def test_twistd_help_documents_every_option(tmp_path):
    result = twistd("electrumx", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    unwrapped = "".join(result.stdout.split())
    for setting in SETTINGS:
        assert f"--{setting.option}=" in result.stdout
        assert f"[{setting.name};default:" in unwrapped
    assert "--demo" in result.stdout and "--config=" in result.stdout
    assert "startthebuilt-inregtestnodein-processandserveit" in unwrapped


@pytest.mark.parametrize("args, env, line", [
    (["--coin", "Nocoin", "--daemon-url", f"http://u:{PASSWORD}@127.0.0.1:1/",
      "--db-directory", "db"], {},
     "electrumx: error: COIN: unknown coin 'Nocoin'; known coins: Bitcoin, BitcoinSV, Litecoin"),
    (["--db-directory", "db"], {"DAEMON_URL": f"http://u:{PASSWORD}@127.0.0.1:port/"},
     "electrumx: error: DAEMON_URL: malformed daemon URL (Port could not be cast to integer "
     "value as)"),
    ([], {"TCP_PORT": "50001"}, "electrumx: error: TCP_PORT: this ElectrumX setting is "
                                "obsolete; use SERVICES instead (in the environment)"),
    (["--demo", "--services", "ssl://127.0.0.1:50002"], {},
     "electrumx: error: SSL_CERTFILE: is required to serve ssl or wss"),
])
def test_twistd_stops_on_a_bad_setting_with_one_line(tmp_path, args, env, line):
    result = twistd("-n", "--pidfile=", "--logfile=-", "electrumx", *args, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]
    assert "Traceback" not in result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is written before the settings are good"
