"""The config file's line syntax (electrumx/config/env_file.py), one line in a real file."""

import pytest

from electrumx.config import ConfigError, load_settings
from electrumx.config.sources import read_config_file

from tests.config.helpers import PASSWORD
from tests.config.test_sources import write


@pytest.mark.parametrize("line, parsed", [
    ("", None),
    ("   ", None),
    ("# a comment", None),
    ("   # an indented comment", None),
    ("; a systemd comment", None),
    ("CACHE_MB=1200", ("CACHE_MB", "1200")),
    ("  CACHE_MB = 1200  ", ("CACHE_MB", "1200")),
    ("export CACHE_MB=1200", ("CACHE_MB", "1200")),
    ("export\tCACHE_MB=1200", ("CACHE_MB", "1200")),
    ("CACHE_MB=1200 # the node has little RAM", ("CACHE_MB", "1200")),
    ("CACHE_MB=1200\t#tab, then a comment", ("CACHE_MB", "1200")),
    ("DONATION_ADDRESS=", ("DONATION_ADDRESS", "")),
    ("DONATION_ADDRESS=   # none", ("DONATION_ADDRESS", "")),
    ("DAEMON_URL=http://u:pa#ss@h/", ("DAEMON_URL", "http://u:pa#ss@h/")),
    ("DAEMON_URL=http://u:pa#ss@h/ # the node", ("DAEMON_URL", "http://u:pa#ss@h/")),
    ("DAEMON_URL=#first", ("DAEMON_URL", "#first")),
    ("DAEMON_URL='http://u:p a#ss@h/'  # quoted", ("DAEMON_URL", "http://u:p a#ss@h/")),
    ('DAEMON_URL="http://u:p #ss@h/"', ("DAEMON_URL", "http://u:p #ss@h/")),
    ("""DAEMON_URL="it's" """, ("DAEMON_URL", "it's")),
    ("""DAEMON_URL='say "hi"'""", ("DAEMON_URL", 'say "hi"')),
    (r'DAEMON_URL="a\"b\\c\$d\`e\nf"', ("DAEMON_URL", r'a"b\c$d`e\nf')),
    (r"DROP_CLIENT=^Electrum\s1\.", ("DROP_CLIENT", r"^Electrum\s1\.")),
    (r"DROP_CLIENT='^Electrum\s1\.'", ("DROP_CLIENT", r"^Electrum\s1\.")),
    ("DROP_CLIENT=Electrum 2", ("DROP_CLIENT", "Electrum 2")),
    ("DROP_CLIENT=^a=b", ("DROP_CLIENT", "^a=b")),
    ("""BANNER_FILE=a"b c"'d e'f""", ("BANNER_FILE", "ab cd ef")),
    ("DAEMON_URL=$HOME", ("DAEMON_URL", "$HOME")),
])
def test_lines(tmp_path, line, parsed):
    assert read_config_file(write(tmp_path, line + "\n")) == dict([parsed] if parsed else [])


@pytest.mark.parametrize("line, problem", [
    ("just words", "expected NAME=VALUE"),
    ("=5", "expected NAME=VALUE"),
    ("export", "expected NAME=VALUE"),
    ("export CACHE_MB", "expected NAME=VALUE"),
    ("DAEMON_URL='http://u:p@h/", "a single quote is not closed on this line"),
    ('DAEMON_URL="http://u:p@h/', "a double quote is not closed on this line"),
    ('DAEMON_URL="a\\"', "a double quote is not closed on this line"),
    ("export COIN=Bitcoin NET=mainnet", "one NAME=VALUE a line"),
])
def test_refused_lines(tmp_path, line, problem):
    path = write(tmp_path, f"CACHE_MB=10\n{line}\n")
    with pytest.raises(ConfigError, match=f"^--config: {path}:2: {problem}"):
        read_config_file(path)


def test_a_file_a_shell_would_source(tmp_path):
    (tmp_path / "banner#1.txt").write_text("welcome")
    config = write(tmp_path, "\n".join([
        "# electrumx, as sourced by a shell or read by systemd",
        "export COIN=Bitcoin",
        "export NET=regtest   # the test chain",
        f"export DAEMON_URL='http://user:{PASSWORD}%23x@127.0.0.1:18443/'  # %23 is #",
        f'DB_DIRECTORY="{tmp_path}/db dir"',
        f"BANNER_FILE={tmp_path}/banner#1.txt # a # in a value",
        "CACHE_MB=300 # MB",
        "",
    ]))
    s = load_settings({}, {}, config)
    assert (s.coin.NET, s.cache_mb, s.db_directory) == ("regtest", 300, f"{tmp_path}/db dir")
    assert s.banner_file == f"{tmp_path}/banner#1.txt"
    assert s.daemon_urls[0].password == PASSWORD + "#x"
