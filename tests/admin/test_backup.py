"""`electrumx-rpc backup DIR`: a consistent copy of the live index, made while serving."""

import os

import pytest_twisted
from twisted.internet import defer

from electrumx.coins import BitcoinRegtest
from electrumx.index.db import IndexDB
from tests.admin.test_rpc import admin, cli, live  # noqa: F401 (fixture)
from tests.fixtures.regtest import wait_for


def pause_copies_after_one_step(monkeypatch):
    """Make every copy wait, after its first step, until the returned Deferred fires.

    The tiny chain copies in one cooperator tick; a Deferred yielded to
    `task.cooperate` pauses the copy the way a long copy would go on meanwhile.
    """
    go_on = defer.Deferred()
    copy_steps = IndexDB.copy_steps

    def paused(self, path):
        steps = copy_steps(self, path)
        yield next(steps)
        yield go_on
        yield from steps

    monkeypatch.setattr(IndexDB, "copy_steps", paused)
    monkeypatch.setattr(IndexDB, "COPY_BATCH_BYTES", 512)
    return go_on


def digest_of(directory):
    db = IndexDB(str(directory), BitcoinRegtest)
    db.open(for_sync=False)
    try:
        return db.height, db.digest()
    finally:
        db.close()


@pytest_twisted.ensureDeferred
async def test_backup_is_a_ready_db_directory_with_the_live_index(live, tmp_path):
    server = await live()
    server.sessions.bans.ban("203.0.113.0/24")
    expected = (server.db.height, server.db.digest())
    code, out, err = await cli(server, "backup", str(tmp_path / "copy"))
    assert code == 0, err
    assert f"height     {expected[0]}" in out
    assert digest_of(tmp_path / "copy") == expected
    assert os.path.exists(tmp_path / "copy" / "bans.json")
    assert not [p for p in os.listdir(tmp_path / "copy") if p.endswith(".partial")]


@pytest_twisted.ensureDeferred
async def test_backup_is_the_index_as_of_its_start_while_blocks_arrive(live, tmp_path,
                                                                      monkeypatch):
    server = await live()
    go_on = pause_copies_after_one_step(monkeypatch)
    expected = (server.db.height, server.db.digest())
    d = server.admin.backup(str(tmp_path / "copy"))
    server.node.node.mine(3, random_txs=5)
    await wait_for(lambda: server.db.height == expected[0] + 3)
    go_on.callback(None)
    summary = await d
    assert summary["height"] == expected[0]
    assert digest_of(tmp_path / "copy") == expected


@pytest_twisted.ensureDeferred
async def test_backup_refuses_a_used_or_relative_target_and_a_second_backup(live, tmp_path,
                                                                          monkeypatch):
    server = await live()
    code, _out, _err = await cli(server, "backup", str(tmp_path / "copy"))
    assert code == 0
    code, _out, err = await cli(server, "backup", str(tmp_path / "copy"))
    assert code == 1 and "exists already" in err
    code, _out, err = await cli(server, "backup", os.path.dirname(server.db.path))
    assert code == 1 and "live DB_DIRECTORY" in err
    client = await admin(server)
    reply = await client.call("backup", "relative/dir")
    assert "absolute" in reply["error"]["message"]
    go_on = pause_copies_after_one_step(monkeypatch)
    first = server.admin.backup(str(tmp_path / "two"))
    reply = await client.call("backup", str(tmp_path / "three"))
    assert "already running" in reply["error"]["message"]
    go_on.callback(None)
    assert (await first)["height"] == server.db.height


@pytest_twisted.ensureDeferred
async def test_a_backup_cut_short_by_shutdown_leaves_nothing_that_looks_whole(live, tmp_path,
                                                                             monkeypatch):
    server = await live()
    go_on = pause_copies_after_one_step(monkeypatch)
    d = server.admin.backup(str(tmp_path / "copy"))
    await wait_for(lambda: os.listdir(tmp_path / "copy"))       # the copy has begun
    server.indexer.stopService()                # the shutdown closes the index mid-copy
    go_on.callback(None)
    failure = None
    try:
        await d
    except Exception as e:
        failure = e
    assert failure is not None and "closed during the copy" in str(failure)
    assert os.listdir(tmp_path / "copy") == []
