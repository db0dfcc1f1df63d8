"""The admin shell's authorized_keys file: the operators' public keys, in OpenSSH's format.

It lives with the configuration because the settings are checked with it
(ADMIN_SSH_AUTHORIZED_KEYS must hold a key before the server starts), and
the admin shell reads it again at every login.
"""

from twisted.conch.ssh import keys

from electrumx.logs import Logger

log = Logger()

KEY_TYPE_PREFIXES = (b"ssh-", b"ecdsa-sha2-", b"sk-ssh-", b"sk-ecdsa-")


def parse_authorized_keys(data: bytes) -> list:
    """The public keys of an OpenSSH authorized_keys text.

    Blank lines and `#` comments are skipped, as are a line's options
    (`from="..."`, `no-pty`, ...) before its key type and its comment after
    the key.  A line that holds no readable key is logged and skipped.
    """
    found = []
    for number, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        key = _key_of_line(line)
        if key is None:
            log.warn("admin shell: authorized_keys line {number} holds no public key",
                     number=number)
        else:
            found.append(key)
    return found


def _key_of_line(line: bytes):
    words = line.split()
    for i, word in enumerate(words[:-1]):
        if word.startswith(KEY_TYPE_PREFIXES):
            try:
                return keys.Key.fromString(word + b" " + words[i + 1])
            except (keys.BadKeyError, ValueError, IndexError):
                return None
    return None


def read_authorized_keys(path: str) -> list:
    """The keys of the authorized_keys file at `path` (OSError if it cannot be read)."""
    with open(path, "rb") as f:
        return parse_authorized_keys(f.read())
