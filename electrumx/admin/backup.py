"""`electrumx-rpc backup DIR`: a consistent copy of the live index, made while serving.

The copy is taken at a flush boundary: the indexer's cache is flushed first,
then the index is read through a LevelDB snapshot, so it holds one committed
state of the chain and nothing half-written, whatever the server does
meanwhile.  Copying runs on the reactor in small steps (see
`IndexDB.copy_steps`), so clients are served throughout.

DIR ends up as a ready DB_DIRECTORY: the index under its usual name, beside
the small files the server keeps there (bans, the admin shell's and the onion
service's keys).  The index is written under a `.partial` name and renamed
only when complete, so an interrupted backup never looks like a good one.
"""

import os
import shutil
import time

from twisted.internet import task

from electrumx.admin.process import directory_bytes
from electrumx.chain.hashes import hash_to_hex_str
from electrumx.private_files import make_private_directory

SIDE_FILES = ("bans.json", "ssh_host_key", "tor-onion-key")
"""Files the server keeps in DB_DIRECTORY beside the index, copied along with it."""


class BackupError(Exception):
    """A backup that cannot be made; the message is for the operator."""


class Backup:
    """One backup of `db` (an open IndexDB) into `directory`."""

    def __init__(self, db, directory: str, flush):
        self.db = db
        self.directory = os.path.abspath(directory)
        self.flush = flush
        self.final_path = os.path.join(self.directory, os.path.basename(db.path))
        self.partial_path = self.final_path + ".partial"

    def check_target(self):
        """Refuse a target that holds an index already, or that is the live one."""
        live = os.path.dirname(os.path.abspath(self.db.path))
        if self.directory == live:
            raise BackupError("the backup directory is the live DB_DIRECTORY")
        for path in (self.final_path, self.partial_path):
            if os.path.exists(path):
                raise BackupError(f"{path} exists already: choose an empty directory")

    def run(self):
        """A Deferred of the summary, once the copy is complete."""
        self.check_target()
        make_private_directory(self.directory)
        self.flush()
        state = self.db.state
        summary = {"directory": self.directory, "height": state.height,
                   "tip": hash_to_hex_str(state.tip), "tx_count": state.tx_count}
        started = time.monotonic()
        steps = self.db.copy_steps(self.partial_path)
        d = task.cooperate(steps).whenDone()
        d.addCallback(lambda _: self._finish(summary, started))
        d.addErrback(self._failed)
        return d

    def _finish(self, summary, started):
        os.rename(self.partial_path, self.final_path)
        copied = []
        live = os.path.dirname(os.path.abspath(self.db.path))
        for name in SIDE_FILES:
            source = os.path.join(live, name)
            if os.path.exists(source):
                shutil.copy2(source, os.path.join(self.directory, name))
                copied.append(name)
        summary.update(seconds=round(time.monotonic() - started, 3),
                       bytes=directory_bytes(self.final_path), files=copied)
        return summary

    def _failed(self, failure):
        shutil.rmtree(self.partial_path, ignore_errors=True)
        raise BackupError(f"backup failed: {failure.value}")
