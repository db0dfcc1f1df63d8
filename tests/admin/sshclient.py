"""Debian's OpenSSH client, run from the test's reactor against a shell in the same process."""

import os
import re
import shutil
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.internet import defer, protocol, reactor

SSH = shutil.which("ssh") or "/usr/bin/ssh"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78DEHMc]")


@dataclass
class ClientKey:
    """A client key pair on disk: `path` for `ssh -i`, `line` for authorized_keys."""

    path: str
    line: str


def make_client_key(directory, name, comment="operator@example") -> ClientKey:
    """A new ed25519 key pair, the private half in `directory/name` with mode 0600."""
    private = ed25519.Ed25519PrivateKey.generate()
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.OpenSSH,
                                      serialization.NoEncryption()))
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH)
    return ClientKey(path, f"{public.decode()} {comment}")


def strip_ansi(data: bytes) -> str:
    """Terminal output without its escape sequences (the manhole colours its echo)."""
    return ANSI.sub(b"", data).decode(errors="replace")


@dataclass
class SSHResult:
    exit_code: object       # None when the client had to be killed
    output: str             # the terminal's text, escape sequences removed
    log: str                # ssh's stderr (with -v: what was negotiated)


class _SSHProcess(protocol.ProcessProtocol):
    """Types `lines` at the first prompt, then Ctrl-D once `done(output)` is true."""

    def __init__(self, lines, done):
        self.lines = lines
        self.done = done
        self.out = b""
        self.err = b""
        self.typed = self.quit = False
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self.out += data
        text = strip_ansi(self.out)
        if not self.typed and ">>> " in text:
            self.typed = True
            for line in self.lines:
                self.transport.write(line.encode() + b"\r")
        if self.typed and not self.quit and self.done(text):
            self.quit = True
            self.transport.write(b"\x04")

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        self.ended.callback(getattr(reason.value, "exitCode", None))


def ssh_args(port, key_path, options=()):
    """An `ssh` command line for admin@127.0.0.1:port that trusts any host key, no agent."""
    args = [SSH, "-F", "/dev/null",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=5",
            *options, "-p", str(port), "admin@127.0.0.1"]
    if key_path:
        args[1:1] = ["-i", key_path]
    return args


async def _spawn(process, args, home, timeout):
    transport = reactor.spawnProcess(process, SSH, args,
                                     env={"HOME": str(home), "PATH": os.environ["PATH"]})
    killer = reactor.callLater(timeout, lambda: transport.signalProcess("KILL"))
    exit_code = await process.ended
    if killer.active():
        killer.cancel()
    return exit_code


async def run_ssh(port, key_path, home, lines=(), expect=(), options=(), timeout=20.0):
    """Log in to 127.0.0.1:port with `ssh -tt`, type `lines`, and quit once every regex
    of `expect` is in the output (or at once when none is given); killed after `timeout`.
    """
    patterns = [re.compile(p) for p in expect]
    process = _SSHProcess(lines, lambda text: all(p.search(text) for p in patterns))
    exit_code = await _spawn(process, ssh_args(port, key_path, ["-v", "-tt", *options]), home,
                             timeout)
    return SSHResult(exit_code, strip_ansi(process.out), process.err.decode(errors="replace"))


@dataclass
class ScriptResult:
    exit_code: object       # None when the client had to be killed
    out: str                # the remote standard output
    err: str                # the remote standard error, then ssh's own messages


class _ScriptProcess(protocol.ProcessProtocol):
    """Writes `stdin` to ssh, closes it, and collects what comes back."""

    def __init__(self, stdin: bytes):
        self.stdin = stdin
        self.out = b""
        self.err = b""
        self.ended = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.stdin)
        self.transport.closeStdin()

    def outReceived(self, data):
        self.out += data

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        self.ended.callback(getattr(reason.value, "exitCode", None))


async def run_ssh_script(port, key_path, home, stdin=b"", command=None, options=(),
                         timeout=20.0):
    """Log in without a terminal (`ssh -T`, or `-t` in `options`), send `stdin` and close
    it, or run `command`: what a script piping into ssh sees."""
    args = ssh_args(port, key_path, ["-T", "-o", "LogLevel=ERROR", *options])
    args += [command] if command else []
    process = _ScriptProcess(stdin)
    exit_code = await _spawn(process, args, home, timeout)
    return ScriptResult(exit_code, process.out.decode(errors="replace"),
                        process.err.decode(errors="replace"))
