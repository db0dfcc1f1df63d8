"""Files and directories that only the server's own user may read.

DB_DIRECTORY holds the admin shell's SSH host key, the onion service's key
and the ban list beside the index.  Whatever the umask, the server makes
that directory 0700 and those files 0600.  What already exists is never
chmod-ed behind the operator's back (a deliberate group or ACL setup stays);
instead a DB_DIRECTORY that every user of the machine may enter is reported
once at start, since it exposes whatever is readable inside it.
"""

import os
import tempfile

from electrumx.logs import Logger

log = Logger()

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
OTHERS = 0o007
"""The permission bits of users other than the owner and the owner's group."""


def make_private_directory(path: str) -> bool:
    """Create `path` (and missing parents) with mode 0700; False if it already existed.

    The parents get the usual mode: only the directory itself holds secrets.
    """
    try:
        os.makedirs(path, mode=PRIVATE_DIRECTORY_MODE)
    except FileExistsError:
        return False
    os.chmod(path, PRIVATE_DIRECTORY_MODE)     # exactly, whatever the umask took away
    return True


def warn_if_open_to_others(path: str, what: str):
    """Log a warning if users other than the owner and its group may use `path`."""
    mode = os.stat(path).st_mode & 0o777
    if mode & OTHERS:
        log.warn("{what} {path} is open to every user of this machine (mode {mode:o}); "
                 "chmod 700 it", what=what, path=path, mode=mode)


def write_private_file(path: str, data: bytes):
    """Replace `path` with `data`, mode 0600, atomically and durably.

    The data goes to a temporary file beside `path` (created 0600), is
    fsynced and renamed into place: a crash leaves the old file or the new
    one, never half of one, and the new file is never readable by others.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, PRIVATE_FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
