"""Where settings come from: option > environment > config file > default; obsolete names."""

import pytest

from electrumx.config import load_settings
from electrumx.config.settings import OBSOLETE

from tests.config.helpers import PASSWORD, load, refused


def write(tmp_path, text, name="electrumx.conf"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_option_beats_environment_beats_file_beats_default(tmp_path):
    config = write(tmp_path, "CACHE_MB=300\nMAX_SESSIONS=300\nLOG_SESSIONS=300\n")
    s = load(options={"CACHE_MB": "100"},
             env={"CACHE_MB": "200", "MAX_SESSIONS": "200"}, config_file=config)
    assert (s.cache_mb, s.max_sessions, s.log_sessions, s.request_timeout) == (100, 200, 300, 30)


def test_an_option_not_given_is_none_and_falls_through():
    s = load(options={"CACHE_MB": None}, env={"CACHE_MB": "200"})
    assert s.cache_mb == 200


def test_an_empty_option_overrides_the_environment():
    s = load(options={"SERVICES": ""}, env={"SERVICES": "tcp://:50001"})
    assert s.services == []


def test_config_file_syntax(tmp_path):
    config = write(tmp_path, "\n".join([
        "# a comment", "; another comment", "", "   ",
        "COIN = Bitcoin", 'DONATION_ADDRESS="bc1qqqqsyqcyq5rqwzqfpg9scrgwpugpzysn4v0345"',
        "BANNER_FILE='" + __file__ + "'",
        "DROP_CLIENT=^a=b", "DAEMON_URL=http://u:" + PASSWORD + "@10.0.0.1", "",
    ]))
    s = load_settings({}, {"DB_DIRECTORY": "/tmp/db"}, config)
    assert s.donation_address == "bc1qqqqsyqcyq5rqwzqfpg9scrgwpugpzysn4v0345"
    assert s.banner_file == __file__
    assert s.drop_client.pattern == "^a=b"
    assert s.daemon_urls[0].host == "10.0.0.1"


def test_the_config_file_alone_can_configure_everything(tmp_path):
    config = write(tmp_path, f"DAEMON_URL=http://u:{PASSWORD}@127.0.0.1\n"
                             f"DB_DIRECTORY={tmp_path}\n")
    s = load_settings({}, {}, config)
    assert s.db_directory == str(tmp_path) and s.daemon_urls[0].password == PASSWORD


@pytest.mark.parametrize("text, expected", [
    ("CACHE_MB=10\nNOT_A_SETTING=1\n", "--config: {path}:2: unknown setting NOT_A_SETTING"),
    ("# ok\njust words\n", "--config: {path}:2: expected NAME=VALUE"),
    ("=5\n", "--config: {path}:1: expected NAME=VALUE"),
    ("TCP_PORT=50001\n", "TCP_PORT: this ElectrumX setting is obsolete; use SERVICES "
                         "instead ({path}:1)"),
    ("CACHE_MB=lots\n", "CACHE_MB: 'lots' is not a whole number"),
])
def test_config_file_errors_name_the_line(tmp_path, text, expected):
    config = write(tmp_path, text)
    assert refused(config_file=config) == expected.format(path=config)


def test_unreadable_config_files(tmp_path):
    missing = str(tmp_path / "missing.conf")
    assert refused(config_file=missing) == \
        f"--config: cannot read {missing!r}: No such file or directory"
    binary = tmp_path / "binary.conf"
    binary.write_bytes(b"CACHE_MB=\xff\xfe\n")
    assert refused(config_file=str(binary)) == \
        f"--config: cannot read {str(binary)!r}: not UTF-8 text"


@pytest.mark.parametrize("name", sorted(OBSOLETE))
def test_obsolete_variables_are_refused_naming_their_replacement(name):
    assert refused({name: "1"}) == (f"{name}: this ElectrumX setting is obsolete; use "
                                    f"{OBSOLETE[name]} instead (in the environment)")


@pytest.mark.parametrize("name, replacement", [
    ("MAX_SUBSCRIPTIONS", "MAX_SUBS"), ("BANDWIDTH_LIMIT", "COST_SOFT_LIMIT, COST_HARD_LIMIT "
                                                           "and BANDWIDTH_UNIT_COST"),
    ("HOST", "SERVICES"), ("RPC_PORT", "SERVICES"), ("REPORT_SSL_PORT_TOR", "REPORT_SERVICES"),
    ("EVENT_LOOP_POLICY", "twistd --reactor"),
])
def test_the_replacements(name, replacement):
    assert replacement in OBSOLETE[name]


def test_max_subs_and_max_session_subs_are_not_obsolete_here():
    assert "MAX_SUBS" not in OBSOLETE and "MAX_SESSION_SUBS" not in OBSOLETE
