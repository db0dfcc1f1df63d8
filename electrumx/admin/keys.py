"""The admin shell's SSH keys: its host key, and the operators' authorized_keys file.

The host key is made once, on first start, and kept: a client that trusted
it once keeps trusting the same server.  The authorized_keys file is read at
every login, so adding or removing an operator's key needs no restart (its
parser is `electrumx.config.authorized_keys`: the settings check it too).
"""

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.ssh import keys
from zope.interface import implementer
from twisted.conch.checkers import IAuthorizedKeysDB

from electrumx.config.authorized_keys import read_authorized_keys
from electrumx.logs import Logger
from electrumx.private_files import make_private_directory, write_private_file

log = Logger()


class HostKeyError(Exception):
    """The host key file exists but is no private key this server can use."""


def fingerprint(key: keys.Key) -> str:
    """The SHA256 fingerprint of a key as OpenSSH shows it (`SHA256:...`, no padding)."""
    return "SHA256:" + key.fingerprint(keys.FingerprintFormats.SHA256_BASE64).rstrip("=")


def load_or_create_host_key(path: str) -> keys.Key:
    """The private host key kept at `path`, made (ed25519, mode 0600) if there is none.

    The new key is written atomically (`write_private_file`), so a crash never
    leaves half a key that the next start would refuse.
    """
    if not os.path.exists(path):
        _write_new_host_key(path)
        log.info("admin shell: generated a new SSH host key at {path}", path=path)
    elif os.stat(path).st_mode & 0o077:
        log.warn("admin shell: the SSH host key {path} is readable by others than its "
                 "owner; chmod 600 it", path=path)
    try:
        key = keys.Key.fromFile(path)
    except (keys.BadKeyError, keys.EncryptedKeyError, ValueError, OSError) as e:
        raise HostKeyError(f"cannot use {path} as the admin shell's SSH host key ({e}); "
                           "move it aside to have a new one made") from None
    if key.isPublic():
        raise HostKeyError(f"{path} is a public key; the admin shell needs a private host key")
    return key


def _write_new_host_key(path: str):
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())
    make_private_directory(os.path.dirname(os.path.abspath(path)))
    write_private_file(path, pem)


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """The keys allowed in, read afresh from one file at every login, for any user name.

    A file that cannot be read lets nobody in (and says so in the log).
    """

    def __init__(self, path: str):
        self.path = path

    def getAuthorizedKeys(self, username: bytes) -> list:
        try:
            return read_authorized_keys(self.path)
        except OSError as e:
            log.error("admin shell: cannot read {path}: {error}; refusing every login",
                      path=self.path, error=e.strerror)
            return []
