"""What one admin shell login runs: the Python prompt on a terminal, a script reader without.

`ssh -p 8022 admin@127.0.0.1` asks for a terminal and gets Conch's manhole,
a prompt with line editing and history.  Without a terminal the same names
read Python from the channel instead, a line at a time as the prompt takes
them, and each result is printed; so the shell can be scripted:

    echo 'db.height' | ssh -p 8022 admin@127.0.0.1     # a shell without a terminal
    ssh -p 8022 admin@127.0.0.1 'db.height'            # a command

Results go to standard output, tracebacks to standard error.  When the input
ends (or the command has run) and every Deferred it printed has fired, the
session ends with exit status 0, or 1 if anything raised or failed.
"""

from contextlib import contextmanager

from twisted.conch import manhole, manhole_ssh
from twisted.conch.interfaces import IConchUser
from twisted.conch.ssh.session import wrapProtocol
from twisted.internet import defer, error, protocol
from twisted.python.failure import Failure


class ScriptInterpreter(manhole.ManholeInterpreter):
    """The manhole's interpreter (print captured, Deferreds shown as they fire) that
    sends tracebacks to its handler's `addError`, and remembers what to wait for.

    `failed` is true once a line raised; `waiting` holds the Deferreds shown
    before they fired.
    """

    def __init__(self, handler, namespace):
        super().__init__(handler, namespace)
        self.failed = False
        self.waiting = []
        self._showing_error = False

    def showsyntaxerror(self, *args, **kwargs):
        with self._error():
            super().showsyntaxerror(*args, **kwargs)

    def showtraceback(self, *args, **kwargs):
        with self._error():
            super().showtraceback(*args, **kwargs)

    @contextmanager
    def _error(self):
        self.failed = True
        self._showing_error = True
        try:
            yield
        finally:
            self._showing_error = False

    def displayhook(self, obj):
        if isinstance(obj, defer.Deferred) and not obj.called:
            self.waiting.append(obj)
        super().displayhook(obj)
        if obj is not None:
            self.write("\n")           # each value on its line, as the Python prompt shows it

    def write(self, data, isAsync=None):
        if self._showing_error:
            self.handler.addError(data)
        else:
            self.handler.addOutput(data, isAsync)


class ScriptReader(protocol.Protocol):
    """Runs the Python lines it receives in `namespace`.

    Its transport is the channel's SSHSessionProcessProtocol: output goes to
    its `outReceived`, tracebacks to `errReceived`, the exit status to
    `processEnded`.

    `newline` ends each output line: b"\\r\\n" when the client asked for a terminal.
    """

    def __init__(self, namespace: dict, newline: bytes = b"\n"):
        self.namespace = namespace
        self.newline = newline
        self.pending = b""
        self.more = False           # the interpreter waits for the rest of a block
        self.line_open = False      # the last output did not end its line
        self.ended = False
        self.interpreter = None

    def connectionMade(self):
        self.interpreter = ScriptInterpreter(self, self.namespace)

    def dataReceived(self, data: bytes):
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            self.run_line(line.rstrip(b"\r"))

    def run_line(self, line: bytes):
        """Hand one line to the interpreter, as if typed at the prompt."""
        if self.ended:
            return
        # Bytes that are no UTF-8 become U+FFFD here, not an exception out of dataReceived.
        self.more = self.interpreter.push(line.decode("utf-8", "replace").encode())
        if not self.more and self.line_open:
            self._write(self.newline)
            self.line_open = False

    def run_command(self, command: bytes):
        """Run the lines of an SSH command, then end."""
        for line in command.splitlines():
            self.run_line(line)
        self.input_ended()

    def input_ended(self):
        """No more input: finish an open line or block, wait for the Deferreds shown, end."""
        if self.ended:
            return
        if self.pending:
            self.run_line(self.pending)
            self.pending = b""
        if self.more:
            self.run_line(b"")
        self.ended = True
        waiting = defer.DeferredList(self.interpreter.waiting, consumeErrors=True)
        waiting.addCallback(self._exit)

    def _exit(self, results):
        failed = self.interpreter.failed or not all(fired for fired, _value in results)
        status = 1 if failed else 0
        reason = error.ProcessDone(0) if status == 0 else error.ProcessTerminated(status)
        self.transport.processEnded(Failure(reason))

    def addOutput(self, text: str, isAsync=None):
        """Where the interpreter writes results and printed text."""
        self.line_open = not text.endswith("\n")
        self._write(text.encode("utf-8", "replace").replace(b"\n", self.newline))
        if isAsync and self.line_open:      # a Deferred's result, between two inputs
            self._write(self.newline)
            self.line_open = False

    def addError(self, text: str):
        """Where the interpreter writes tracebacks."""
        self.transport.errReceived(text.encode("utf-8", "replace").replace(b"\n", self.newline))

    def _write(self, data: bytes):
        self.transport.outReceived(data)


class ShellSession(manhole_ssh.TerminalSession):
    """The session of one admin shell login (Conch's ISession).

    With a terminal (a pty request first), a shell is the manhole prompt;
    without one, a shell reads a script from the channel; a command is run
    as a script either way.  `namespace()` gives the names a session starts with.
    """

    def __init__(self, avatar, namespace):
        super().__init__(avatar)
        self.namespace = namespace
        self.has_terminal = False
        self.prompt = None          # the manhole's terminal transport, once it runs
        self.channel = None
        self.script = None

    def getPty(self, term, windowSize, modes):
        super().getPty(term, windowSize, modes)
        self.has_terminal = True

    def openShell(self, proto):
        self.channel = proto
        if not self.has_terminal:
            self._read_script(proto)
            return
        self.prompt = self.transportFactory(proto, self.chainedProtocolFactory(),
                                            IConchUser(self.original), self.width, self.height)

    def execCommand(self, proto, command):
        self.channel = proto
        self._read_script(proto).run_command(command)

    def _read_script(self, proto):
        self.script = ScriptReader(self.namespace(), b"\r\n" if self.has_terminal else b"\n")
        self.script.makeConnection(proto)
        # The channel hands what the client sends to its process protocol's transport.
        proto.makeConnection(wrapProtocol(self.script))
        return self.script

    def windowChanged(self, newWindowSize):
        self.height, self.width = newWindowSize[:2]
        if self.prompt is not None:
            self.prompt.chainedProtocol.terminalProtocol.terminalSize(self.width, self.height)

    def eofReceived(self):
        if self.script is not None:
            self.script.input_ended()
        elif self.channel is not None:
            self.channel.loseConnection()
