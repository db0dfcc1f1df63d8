"""The admin shell over real SSH on 127.0.0.1: OpenSSH's client against the Conch manhole."""

import fcntl
import os
import signal
import stat
import struct
import termios
import types

import pytest
import pytest_twisted
from twisted.conch.ssh import keys
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnhandledCredentials
from twisted.conch.interfaces import IConchUser
from twisted.internet import defer, protocol, reactor
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from electrumx.admin.keys import (AuthorizedKeysFile, HostKeyError, fingerprint,
                                  load_or_create_host_key)
from electrumx.admin.shell import NAMES, AdminShellService, shell_factory, shell_namespace
from electrumx.controller import Controller

from tests.admin.sshclient import (SSH, make_client_key, run_ssh, run_ssh_script, ssh_args,
                                   strip_ansi)
from tests.config.helpers import load
from tests.fixtures.regtest import wait_for, within

pytestmark = pytest.mark.skipif(not os.path.exists(SSH), reason="needs openssh-client")


def fake_controller():
    """The attributes shell_namespace reads, with a few values to look at."""
    db = types.SimpleNamespace(height=7)
    return types.SimpleNamespace(
        indexer=types.SimpleNamespace(db=db), db=db, mempool=object(), daemon=object(),
        reader=object(), subscriptions=object(),
        sessions=types.SimpleNamespace(sessions={1: "a", 2: "b"}),
        settings=types.SimpleNamespace(net="regtest"), reactor=reactor)


@pytest.fixture
def keys_dir(tmp_path):
    """Two client keys (`good` is authorized, `other` is not) and the authorized_keys file."""
    folder = tmp_path / "client"
    folder.mkdir(mode=0o700)
    good = make_client_key(folder, "good", "good@example")
    other = make_client_key(folder, "other", "other@example")
    third = make_client_key(folder, "third", "third@example")
    authorized = folder / "authorized_keys"
    authorized.write_text(f"# operators of this server\n\n{third.line}\n  {good.line}\n")
    return types.SimpleNamespace(good=good, other=other, third=third, authorized=authorized,
                                 home=folder)


@pytest.fixture
def start_shell(tmp_path, keys_dir):
    """start_shell(host_key_path=None, namespace=None) -> a started AdminShellService."""
    started = []
    cannot_listen = []

    def start(host_key_path=None, namespace=None):
        controller = fake_controller()
        shell = AdminShellService(
            reactor, "127.0.0.1", 0, str(keys_dir.authorized),
            str(host_key_path or tmp_path / "db" / "ssh_host_key"),
            namespace or (lambda: shell_namespace(controller)), cannot_listen.append)
        shell.startService()
        assert cannot_listen == []
        started.append(shell)
        return shell
    yield start
    for shell in started:
        if shell.running:
            pytest_twisted.blockon(shell.stopService())


def port_of(shell):
    return shell.port.getHost().port


@pytest_twisted.ensureDeferred
async def test_the_authorized_key_gets_a_shell_on_the_live_objects(start_shell, keys_dir):
    shell = start_shell()
    result = await run_ssh(port_of(shell), keys_dir.good.path, keys_dir.home, lines=[
        '"height-%d" % indexer.db.height',
        '"sessions-%d" % len(sessions.sessions)',
        '"peers-%s-%s" % (peers is None, settings.net)',
        '"names-" + ",".join(sorted(n for n in dir() if not n.startswith("_")))',
    ], expect=["'height-7'", "'sessions-2'", "'peers-True-regtest'", "'names-[a-z,]+'"])
    assert "'height-7'" in result.output and "'sessions-2'" in result.output, result
    assert "'peers-True-regtest'" in result.output
    names = result.output.split("'names-")[1].split("'")[0].split(",")
    assert set(NAMES) <= set(names)
    assert "Authenticated to 127.0.0.1" in result.log and "using \"publickey\"" in result.log


@pytest_twisted.ensureDeferred
async def test_each_login_starts_afresh_and_state_does_not_leak(start_shell, keys_dir):
    shell = start_shell()
    first = await run_ssh(port_of(shell), keys_dir.good.path, keys_dir.home,
                          lines=["leftover = 1", '"set-%d" % leftover'], expect=["'set-1'"])
    assert "'set-1'" in first.output, first
    second = await run_ssh(port_of(shell), keys_dir.good.path, keys_dir.home,
                           lines=['"has-%s" % ("leftover" in dir())'], expect=["'has-"])
    assert "'has-False'" in second.output, second


@pytest_twisted.ensureDeferred
async def test_a_wrong_key_is_refused(start_shell, keys_dir):
    shell = start_shell()
    result = await run_ssh(port_of(shell), keys_dir.other.path, keys_dir.home,
                           options=["-o", "PreferredAuthentications=publickey"])
    assert result.exit_code == 255, result
    assert "Permission denied (publickey)" in result.log
    assert ">>>" not in result.output


@pytest_twisted.ensureDeferred
async def test_passwords_and_keyboard_interactive_are_never_offered(start_shell, keys_dir):
    shell = start_shell()
    result = await run_ssh(port_of(shell), None, keys_dir.home, options=[
        "-o", "PreferredAuthentications=password,keyboard-interactive",
        "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1"])
    assert result.exit_code == 255, result
    assert "Authentications that can continue: publickey\n" in result.log.replace("\r", "")
    assert "Permission denied (publickey)" in result.log
    assert ">>>" not in result.output


def test_the_portal_has_no_password_checker(tmp_path, keys_dir):
    factory = shell_factory(dict, str(keys_dir.authorized),
                            load_or_create_host_key(str(tmp_path / "hk")))
    assert [i.__name__ for i in factory.portal.listCredentialsInterfaces()] == [
        "ISSHPrivateKey"]
    d = factory.portal.login(UsernamePassword(b"admin", b"hunter2"), None, IConchUser)
    failures = []
    d.addErrback(failures.append)
    assert failures and failures[0].check(UnhandledCredentials)


@pytest_twisted.ensureDeferred
async def test_edits_to_authorized_keys_apply_at_the_next_login(start_shell, keys_dir):
    shell = start_shell()
    keys_dir.authorized.write_text(keys_dir.other.line + "\n")
    refused = await run_ssh(port_of(shell), keys_dir.good.path, keys_dir.home)
    assert refused.exit_code == 255 and "Permission denied" in refused.log, refused
    let_in = await run_ssh(port_of(shell), keys_dir.other.path, keys_dir.home,
                           lines=['"in-%d" % db.height'], expect=["'in-7'"])
    assert "'in-7'" in let_in.output, let_in
    keys_dir.authorized.unlink()
    nobody = await run_ssh(port_of(shell), keys_dir.other.path, keys_dir.home)
    assert nobody.exit_code == 255 and "Permission denied" in nobody.log, nobody


@pytest_twisted.ensureDeferred
async def test_the_host_key_is_made_once_with_mode_0600_and_kept(start_shell, keys_dir,
                                                                 tmp_path):
    path = tmp_path / "db" / "ssh_host_key"
    assert not path.exists()
    first = start_shell(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(path.parent)) == ["ssh_host_key"], "no temporary file is left"
    pem = path.read_bytes()
    key = keys.Key.fromFile(str(path))
    assert key.sshType() == b"ssh-ed25519" and key.isPublic() is False
    seen = await run_ssh(port_of(first), keys_dir.good.path, keys_dir.home)
    assert f"Server host key: ssh-ed25519 {fingerprint(key)}" in seen.log, seen
    await first.stopService()

    again = start_shell(path)
    assert path.read_bytes() == pem and stat.S_IMODE(path.stat().st_mode) == 0o600
    seen = await run_ssh(port_of(again), keys_dir.good.path, keys_dir.home)
    assert f"Server host key: ssh-ed25519 {fingerprint(key)}" in seen.log, seen


def test_an_unusable_host_key_is_refused_clearly(tmp_path):
    path = tmp_path / "ssh_host_key"
    path.write_text("garbage")
    with pytest.raises(HostKeyError, match="cannot use .* as the admin shell's SSH host key"):
        load_or_create_host_key(str(path))


@pytest_twisted.ensureDeferred
async def test_the_address_fingerprint_and_logins_are_logged(start_shell, keys_dir, tmp_path):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        shell = start_shell()
        key = load_or_create_host_key(str(tmp_path / "db" / "ssh_host_key"))
        await run_ssh(port_of(shell), keys_dir.good.path, keys_dir.home)
        await run_ssh(port_of(shell), keys_dir.other.path, keys_dir.home)
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [formatEvent(e) for e in events if e.get("log_namespace", "").startswith(
        "electrumx.admin")]
    assert (f"admin shell listening on 127.0.0.1:{port_of(shell)}, host key ssh-ed25519 "
            f"{fingerprint(key)}") in lines
    good = keys.Key.fromFile(keys_dir.good.path)
    other = keys.Key.fromFile(keys_dir.other.path)
    assert f"admin shell: admin logged in with {fingerprint(good)}" in lines
    assert f"admin shell: refused admin with {fingerprint(other)}" in lines


def test_an_unreadable_authorized_keys_file_lets_nobody_in(tmp_path):
    assert AuthorizedKeysFile(str(tmp_path / "missing")).getAuthorizedKeys(b"admin") == []


@pytest_twisted.ensureDeferred
async def test_a_busy_port_is_reported_as_the_listener_failure(start_shell, keys_dir, tmp_path):
    shell = start_shell()
    failures = []
    busy = AdminShellService(reactor, "127.0.0.1", port_of(shell), str(keys_dir.authorized),
                             str(tmp_path / "db" / "ssh_host_key"), dict, failures.append)
    busy.startService()
    assert failures == [f"cannot listen for admin-shell on 127.0.0.1:{port_of(shell)}: "
                        "Address already in use"]
    assert busy.port is None


def controller_settings(keys_dir, db_directory, **env):
    return load({"NET": "regtest", "DB_DIRECTORY": str(db_directory), **env})


def test_the_shell_is_absent_unless_configured(keys_dir, tmp_path):
    plain = Controller(controller_settings(keys_dir, tmp_path / "db"), reactor)
    with pytest.raises(KeyError):
        plain.getServiceNamed("admin-shell")
    configured = Controller(controller_settings(
        keys_dir, tmp_path / "db", ADMIN_SSH_PORT="8022",
        ADMIN_SSH_AUTHORIZED_KEYS=str(keys_dir.authorized)), reactor)
    shell = configured.getServiceNamed("admin-shell")
    assert isinstance(shell, AdminShellService) and not shell.running
    assert shell.host_key_path == str(tmp_path / "db" / "ssh_host_key")
    assert not (tmp_path / "db").exists(), "nothing is written before the server starts"
    for controller in (plain, configured):
        controller.daemon.close()


@pytest_twisted.ensureDeferred
async def test_the_real_controller_serves_the_shell_over_its_index(regtest_node, keys_dir,
                                                                   tmp_path):
    settings = controller_settings(
        keys_dir, tmp_path / "db", DAEMON_URL=regtest_node.url, ADMIN_SSH_PORT="8022",
        ADMIN_SSH_AUTHORIZED_KEYS=str(keys_dir.authorized),
        DAEMON_POLL_INTERVAL_BLOCKS="50", DAEMON_POLL_INTERVAL_MEMPOOL="50")
    settings.admin_ssh_port = 0     # any free port, for the test
    controller = Controller(settings, reactor)
    controller.startService()
    try:
        await within(controller.indexer.when_caught_up(), 60)
        height = controller.db.height
        shell = controller.getServiceNamed("admin-shell")
        assert shell.running and shell.port is not None
        result = await run_ssh(port_of(shell), keys_dir.good.path, keys_dir.home, lines=[
            '"height-%d" % indexer.db.height',
            '"same-%s" % (db is indexer.db and controller.sessions is sessions)',
            '"sessions-%d-peers-%s" % (len(sessions.sessions), type(peers).__name__)',
            '"tip-" + reader.__class__.__name__ + "-" + mempool.__class__.__name__',
        ], expect=["'height-", "'same-", "'sessions-", "'tip-"])
        assert f"'height-{height}'" in result.output, result
        assert height == regtest_node.node.height > 0
        assert "'same-True'" in result.output
        assert "'sessions-0-peers-PeerManager'" in result.output
        assert "'tip-ChainReader-MemPool'" in result.output
    finally:
        await controller.stopService()


# ---- scripting: no terminal ---------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_script_piped_in_without_a_terminal_prints_each_result(start_shell, keys_dir):
    shell = start_shell()
    script = (b'db.height\n'
              b'total = 0\n'
              b'for n in range(4):\n'
              b'    total += n\n'
              b'\n'
              b'print("total", total)\n'
              b'"sessions-%d" % len(sessions.sessions)\n'
              b'[1,\n'
              b' 2]')                                   # an open block at the end of input
    result = await run_ssh_script(port_of(shell), keys_dir.good.path, keys_dir.home, script)
    assert result.exit_code == 0, result
    assert result.out.splitlines() == ["7", "total 6", "'sessions-2'", "[1, 2]"]
    assert result.err == "", result


@pytest_twisted.ensureDeferred
async def test_a_script_that_raises_exits_1_with_the_traceback_on_stderr(start_shell,
                                                                        keys_dir):
    shell = start_shell()
    result = await run_ssh_script(port_of(shell), keys_dir.good.path, keys_dir.home,
                                  b"1 / 0\nprint('still runs')\nif True\n")
    assert result.exit_code == 1, result
    assert result.out.splitlines() == ["still runs"]
    assert "ZeroDivisionError: division by zero" in result.err
    assert "SyntaxError" in result.err


@pytest_twisted.ensureDeferred
async def test_a_command_runs_and_the_session_ends(start_shell, keys_dir):
    shell = start_shell()
    result = await run_ssh_script(port_of(shell), keys_dir.good.path, keys_dir.home,
                                  command='"height-%d" % db.height')
    assert (result.exit_code, result.out) == (0, "'height-7'\n"), result
    with_terminal = await run_ssh_script(port_of(shell), keys_dir.good.path, keys_dir.home,
                                         command="db.height; settings.net",
                                         options=["-tt"])
    assert with_terminal.exit_code == 0, with_terminal
    assert with_terminal.out.replace("\r\n", "\n").splitlines()[:1] == ["7"]


@pytest_twisted.ensureDeferred
async def test_a_script_waits_for_the_deferreds_it_printed(start_shell, keys_dir):
    shell = start_shell()
    result = await run_ssh_script(
        port_of(shell), keys_dir.good.path, keys_dir.home,
        b"from twisted.internet import task\n"
        b"task.deferLater(reactor, 0.05, lambda: 'fired')\n")
    assert result.exit_code == 0, result
    assert result.out.splitlines() == ["<Deferred #0>", "Deferred #0 called back: 'fired'"]


@pytest_twisted.ensureDeferred
async def test_piped_input_to_the_terminal_prompt_ends_the_session_cleanly(start_shell,
                                                                          keys_dir):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        shell = start_shell()
        result = await run_ssh_script(port_of(shell), keys_dir.good.path, keys_dir.home,
                                      b'"in-%d" % db.height\r', options=["-tt"])
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert result.exit_code is not None, result                 # not killed
    assert "'in-7'" in strip_ansi(result.out.encode())
    assert not [e for e in events if e.get("log_level") == LogLevel.critical
                or "log_failure" in e], [formatEvent(e) for e in events]


class _TerminalSSH(protocol.ProcessProtocol):
    """ssh on a pseudo-terminal of its own, as an operator's terminal runs it."""

    def __init__(self):
        self.out = b""
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self.out += data

    def processEnded(self, reason):
        self.ended.callback(None)


@pytest_twisted.ensureDeferred
async def test_resizing_the_terminal_is_no_error(start_shell, keys_dir):
    events = []
    globalLogPublisher.addObserver(events.append)
    shell = start_shell()
    ssh = _TerminalSSH()
    transport = reactor.spawnProcess(
        ssh, SSH, ssh_args(port_of(shell), keys_dir.good.path, ["-t", "-o", "LogLevel=ERROR"]),
        env={"HOME": str(keys_dir.home), "PATH": os.environ["PATH"]}, usePTY=True)
    try:
        await wait_for(lambda: ">>> " in strip_ansi(ssh.out))
        # What a terminal window does when it is resized: new size, then SIGWINCH to ssh.
        fcntl.ioctl(transport.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        transport.signalProcess(signal.SIGWINCH)
        transport.write(b'"after-%d" % db.height\r')
        await wait_for(lambda: "'after-7'" in strip_ansi(ssh.out))
        transport.write(b"\x04")
        await within(ssh.ended, 10)
    finally:
        globalLogPublisher.removeObserver(events.append)
        if not ssh.ended.called:
            transport.signalProcess("KILL")
    assert not [e for e in events if e.get("log_level") == LogLevel.critical
                or "log_failure" in e], [formatEvent(e) for e in events]
