"""The admin shell's authorized_keys file, read as OpenSSH writes it."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from twisted.conch.ssh import keys

from electrumx.config.authorized_keys import parse_authorized_keys, read_authorized_keys


def test_authorized_keys_lines_comments_and_options():
    rsa_key = keys.Key(rsa.generate_private_key(65537, 2048)).public()
    ed = keys.Key(ed25519.Ed25519PrivateKey.generate()).public()
    text = (b"# a comment\n\n"
            + rsa_key.toString("openssh") + b" alice@laptop\n"
            + b'from="127.0.0.1",no-agent-forwarding ' + ed.toString("openssh") + b" bob\n"
            + b"ssh-ed25519 not-base64!! broken\n"
            + b"   # indented comment\n")
    assert parse_authorized_keys(text) == [rsa_key, ed]


def test_a_file_is_read_and_a_missing_one_is_an_oserror(tmp_path):
    ed = keys.Key(ed25519.Ed25519PrivateKey.generate()).public()
    path = tmp_path / "authorized_keys"
    path.write_bytes(ed.toString("openssh") + b" operator\n")
    assert read_authorized_keys(str(path)) == [ed]
    with pytest.raises(OSError):
        read_authorized_keys(str(tmp_path / "missing"))
