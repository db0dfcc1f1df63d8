"""The ADMIN_SSH_* settings: defaults, checks against each other, and one-line refusals."""

import os

import pytest

from tests.config.helpers import load, refused
from tests.config.test_tap import twistd

ED25519_LINE = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9"
                "GKJl operator@example")


@pytest.fixture
def authorized(tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text(f"# the operators\n{ED25519_LINE}\n")
    return str(path)


def test_the_shell_is_off_by_default():
    s = load()
    assert s.admin_ssh_port is None and s.admin_ssh_host == "127.0.0.1"
    assert s.admin_ssh_allow_public is False and s.admin_ssh_authorized_keys is None


def test_a_configured_shell(authorized):
    s = load({"ADMIN_SSH_PORT": "8022", "ADMIN_SSH_AUTHORIZED_KEYS": authorized})
    assert (s.admin_ssh_port, s.admin_ssh_host) == (8022, "127.0.0.1")
    assert s.admin_ssh_host_key == os.path.join("/tmp/db", "ssh_host_key")
    s = load({"ADMIN_SSH_PORT": "8022", "ADMIN_SSH_AUTHORIZED_KEYS": authorized,
              "ADMIN_SSH_HOST": "[::1]", "ADMIN_SSH_HOST_KEY": "/etc/electrumx/shell_key"})
    assert (s.admin_ssh_host, s.admin_ssh_host_key) == ("::1", "/etc/electrumx/shell_key")
    assert load({"ADMIN_SSH_PORT": "8022", "ADMIN_SSH_AUTHORIZED_KEYS": authorized,
                 "ADMIN_SSH_HOST": "localhost"}).admin_ssh_host == "localhost"


def test_a_public_shell_must_be_forced(authorized):
    env = {"ADMIN_SSH_PORT": "8022", "ADMIN_SSH_AUTHORIZED_KEYS": authorized,
           "ADMIN_SSH_HOST": "0.0.0.0"}
    assert refused(env) == ("ADMIN_SSH_HOST: 0.0.0.0 is not a loopback address: the admin "
                            "shell must not be public (set ADMIN_SSH_ALLOW_PUBLIC to force it)")
    assert refused({**env, "ADMIN_SSH_HOST": ""}).startswith(
        "ADMIN_SSH_HOST: (every interface) is not a loopback address")
    assert load({**env, "ADMIN_SSH_ALLOW_PUBLIC": "yes"}).admin_ssh_host == "0.0.0.0"


def test_settings_without_a_port_are_not_checked():
    assert load({"ADMIN_SSH_HOST": "0.0.0.0"}).admin_ssh_port is None


@pytest.mark.parametrize("env, expected", [
    ({"ADMIN_SSH_PORT": "8022"}, "ADMIN_SSH_AUTHORIZED_KEYS: is required with ADMIN_SSH_PORT "
                                 "(the public keys allowed into the admin shell)"),
    ({"ADMIN_SSH_PORT": "0"}, "ADMIN_SSH_PORT: 0 is below the minimum of 1"),
    ({"ADMIN_SSH_PORT": "ssh"}, "ADMIN_SSH_PORT: 'ssh' is not a whole number"),
    ({"ADMIN_SSH_PORT": "70000"}, "ADMIN_SSH_PORT: 70000 is above the maximum of 65535"),
    ({"ADMIN_SSH_ALLOW_PUBLIC": "maybe"}, "ADMIN_SSH_ALLOW_PUBLIC: 'maybe' is not a yes/no"),
    ({"ADMIN_SSH_AUTHORIZED_KEYS": "/nonexistent/keys"},
     "ADMIN_SSH_AUTHORIZED_KEYS: cannot read '/nonexistent/keys': No such file or directory"),
])
def test_bad_shell_settings_are_refused(env, expected):
    assert refused(env).startswith(expected)


def test_an_authorized_keys_file_without_keys_is_refused(tmp_path):
    empty = tmp_path / "authorized_keys"
    empty.write_text("# nobody yet\n\nnot a key\n")
    assert refused({"ADMIN_SSH_PORT": "8022", "ADMIN_SSH_AUTHORIZED_KEYS": str(empty)}) == (
        f"ADMIN_SSH_AUTHORIZED_KEYS: {str(empty)!r} holds no public key (OpenSSH "
        "authorized_keys lines)")


def test_twistd_stops_with_one_line_when_the_keys_are_missing(tmp_path):
    result = twistd("-n", "--pidfile=", "--logfile=-", "electrumx", "--demo",
                    "--admin-ssh-port", "8022", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "electrumx: error: ADMIN_SSH_AUTHORIZED_KEYS: is required with ADMIN_SSH_PORT (the "
        "public keys allowed into the admin shell)"]
    assert list(tmp_path.iterdir()) == []
