"""What the server writes in DB_DIRECTORY is its user's alone, whatever the umask."""

import json
import os
import stat

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from electrumx.admin.keys import load_or_create_host_key
from electrumx.coins import BitcoinRegtest
from electrumx.index.db import IndexDB
from electrumx.network.onion import read_key, write_key
from electrumx.protocol.bans import BanList


@pytest.fixture
def open_umask():
    """A umask that takes nothing away, as a careless service manager might leave it."""
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.fixture
def warnings():
    events = []
    globalLogPublisher.addObserver(events.append)
    yield lambda: [formatEvent(e) for e in events
                   if e.get("log_namespace", "").startswith("electrumx")]
    globalLogPublisher.removeObserver(events.append)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_db_directory_is_0700(tmp_path, open_umask, warnings):
    directory = tmp_path / "parent" / "db"
    db = IndexDB(str(directory), BitcoinRegtest)
    db.open()
    db.close()
    assert mode(directory) == 0o700
    assert mode(tmp_path / "parent") == 0o777, "only the directory itself is made private"
    assert warnings() == []


def test_an_existing_open_db_directory_is_reported_once_and_left_alone(tmp_path, warnings):
    directory = tmp_path / "db"
    directory.mkdir()
    os.chmod(directory, 0o755)
    db = IndexDB(str(directory), BitcoinRegtest)
    db.open()
    db.close()
    assert mode(directory) == 0o755
    assert warnings() == [f"DB_DIRECTORY {directory} is open to every user of this machine "
                          "(mode 755); chmod 700 it"]
    os.chmod(directory, 0o750)                  # shared with a group: the operator's choice
    db.open()
    db.close()
    assert len(warnings()) == 1


def test_bans_json_is_0600(tmp_path, open_umask):
    path = tmp_path / "bans.json"
    bans = BanList(str(path))
    bans.ban("203.0.113.0/24")
    assert mode(path) == 0o600 and json.loads(path.read_text()) == ["203.0.113.0/24"]
    bans.unban("203.0.113.0/24")
    assert mode(path) == 0o600 and json.loads(path.read_text()) == []
    assert os.listdir(tmp_path) == ["bans.json"], "no temporary file is left"


def test_the_ssh_host_key_and_the_directory_made_for_it_are_private(tmp_path, open_umask):
    path = tmp_path / "db" / "ssh_host_key"
    load_or_create_host_key(str(path))
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)


def test_the_onion_key_is_0600_even_over_an_open_file(tmp_path, open_umask):
    path = tmp_path / "tor-onion-key"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_key(str(path), "ED25519-V3:secret")
    assert mode(path) == 0o600 and read_key(str(path)) == "ED25519-V3:secret"
