"""Real `twistd electrumx` processes: what the operator's log shows, and starting as root."""

import os
import pwd
import shutil
import tempfile

import pytest
import pytest_twisted

from electrumx.config import ConfigError
from electrumx.tap import refuse_root

from tests.admin.sshclient import SSH, make_client_key, run_ssh, run_ssh_script
from tests.config.helpers import load
from tests.fixtures.host import free_port
from tests.fixtures.regtest import wait_for
from tests.fixtures.twistd import TwistdProcess
from tests.protocol.test_transport import connect


def server_env(node, db_directory, **more):
    return {"COIN": "Bitcoin", "NET": "regtest", "DAEMON_URL": node.url,
            "DB_DIRECTORY": str(db_directory), "DAEMON_POLL_INTERVAL_BLOCKS": "100",
            "DAEMON_POLL_INTERVAL_MEMPOOL": "100", "PEER_DISCOVERY": "off", **more}


@pytest.mark.skipif(not os.path.exists(SSH), reason="needs openssh-client")
@pytest_twisted.ensureDeferred
async def test_the_log_at_info_has_no_twisted_chatter(regtest_node, tmp_path):
    home = tmp_path / "operator"
    home.mkdir(mode=0o700)
    key = make_client_key(home, "id_ed25519")
    (home / "authorized_keys").write_text(key.line + "\n")
    tcp_port, shell_port = free_port(), free_port()
    log = tmp_path / "electrumx.log"
    server = TwistdProcess.start(
        server_env(regtest_node, tmp_path / "db", SERVICES=f"tcp://127.0.0.1:{tcp_port}",
                   ADMIN_SSH_PORT=str(shell_port),
                   ADMIN_SSH_AUTHORIZED_KEYS=str(home / "authorized_keys"), ALLOW_ROOT="yes"),
        tmp_path, twistd_args=["--logfile", str(log)])
    try:
        await wait_for(lambda: log.exists() and b"serving tcp" in log.read_bytes()
                       or server.ended, timeout=60)
        scripted = await run_ssh_script(shell_port, key.path, home, b"db.height\n")
        assert scripted.exit_code == 0 and scripted.out.strip().isdigit(), scripted
        typed = await run_ssh(shell_port, key.path, home, lines=["db.height"],
                              expect=[r"\d+\s"])
        assert typed.exit_code is not None, typed
        wallet = await connect(tcp_port)
        wallet.send({"jsonrpc": "2.0", "id": 1, "method": "server.version",
                     "params": ["log-test", "1.4"]})
        assert (await wallet.reply())["result"]
        wallet.transport.loseConnection()
        await wallet.closed
    finally:
        await server.stop()
    text = log.read_text()
    assert "Server Shut Down." in text, text
    lines = [line for line in text.splitlines() if not line.startswith("\t")]
    assert sum("admin shell: admin logged in" in line for line in lines) == 2, text
    assert any("serving tcp on" in line for line in lines), text
    for chatter in ("twisted.conch", "Starting factory", "Stopping factory", "starting on",
                    "Port ", "HTTP11ClientProtocol", "Unhandled Error", "Traceback"):
        assert not [line for line in lines if chatter in line], (chatter, text)


NOBODY = "nobody"
EARLY_IMPORTS = "import encodings.idna"
"""What the server imports only when it first resolves a host name, after twistd has
switched users: where Python is installed under a home that user cannot read (pyenv in
/root, as on this project's machines), the import would fail then."""


@pytest.mark.skipif(os.geteuid() != 0, reason="starts twistd as root")
@pytest_twisted.ensureDeferred
async def test_root_may_start_the_server_when_twistd_switches_to_another_user(
        regtest_node, tmp_path):
    nobody = pwd.getpwnam(NOBODY)
    # The user twistd becomes must reach its database: not under pytest's root-only tmp.
    shared = tempfile.mkdtemp(prefix="electrumx-uid-")
    try:
        os.chown(shared, nobody.pw_uid, nobody.pw_gid)
        env = server_env(regtest_node, os.path.join(shared, "db"),
                         SERVICES=f"rpc://127.0.0.1:{free_port()}")
        kept_root = TwistdProcess.start(env, tmp_path, twistd_args=[
            f"--uid={nobody.pw_uid}", f"--gid={nobody.pw_gid}", "--euid"],
            prelude=EARLY_IMPORTS)
        await wait_for(lambda: kept_root.ended, timeout=60)
        assert kept_root.exit_code == 2
        assert b"ALLOW_ROOT: refusing to run as root" in kept_root.output

        server = TwistdProcess.start(env, tmp_path, twistd_args=[
            f"--uid={nobody.pw_uid}", f"--gid={nobody.pw_gid}"], prelude=EARLY_IMPORTS)
        try:
            await server.wait_for_output(b"caught up")
            status = open(f"/proc/{server.transport.pid}/status").read()
            uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
            assert uids.split()[1:] == [str(nobody.pw_uid)] * 4, uids
            index = os.path.join(shared, "db")
            assert os.stat(index).st_uid == nobody.pw_uid
        finally:
            await server.stop()
        assert b"Server Shut Down." in server.output, server.output
    finally:
        shutil.rmtree(shared)


def test_only_a_real_switch_to_another_user_lets_root_start():
    settings = load()
    refuse_root(settings, euid=1000)
    refuse_root(settings, euid=0, switch_to_uid=65534)
    for refused in ({}, {"switch_to_uid": 0}, {"switch_to_uid": 65534, "keep_real_uid": True}):
        with pytest.raises(ConfigError, match="ALLOW_ROOT: refusing to run as root"):
            refuse_root(settings, euid=0, **refused)
    refuse_root(load({"ALLOW_ROOT": "yes"}), euid=0)
