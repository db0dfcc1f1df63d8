"""The admin RPC listener (the `rpc://` service): newline-delimited JSON-RPC.

It speaks the same framing as client sessions, so `electrumx-rpc` and
ElectrumX's own `electrumx_rpc` habits carry over, but it is a separate,
trusted channel: no cost model, no version negotiation, and it must only
ever listen on loopback (the configuration refuses anything else unless
RPC_ALLOW_PUBLIC is set).
"""

from twisted.internet import defer, protocol
from twisted.protocols.basic import LineOnlyReceiver

from electrumx.admin.commands import AdminError
from electrumx.logs import Logger
from electrumx.protocol import jsonrpc
from electrumx.protocol.errors import (BAD_REQUEST, INTERNAL_ERROR, INVALID_PARAMS,
                                       METHOD_NOT_FOUND, RPCError)

MAX_ADMIN_LINE = 1_000_000


class AdminSession(LineOnlyReceiver):
    """One admin connection: each line a request (or batch), each answer a line."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_ADMIN_LINE
    log = Logger()

    def __init__(self, commands):
        self.commands = commands

    def lineReceived(self, line: bytes):
        line = line.strip()
        if not line:
            return
        try:
            requests, is_batch = jsonrpc.parse_message(line)
        except RPCError as error:
            self._send(jsonrpc.error_reply(None, error))
            return
        d = defer.gatherResults([self._answer(r) for r in requests], consumeErrors=True)
        d.addCallback(lambda replies: [r for r in replies if r is not None])
        d.addCallback(lambda replies: replies and self._send(replies if is_batch
                                                               else replies[0]))

    def lineLengthExceeded(self, line):
        self._send(jsonrpc.error_reply(None, RPCError(
            INVALID_PARAMS, f"request too long: over {MAX_ADMIN_LINE:,d} bytes")))
        self.transport.loseConnection()

    def _answer(self, request):
        if isinstance(request, RPCError):
            return defer.succeed(jsonrpc.error_reply(None, request))
        d = defer.maybeDeferred(self._run, request)
        d.addCallbacks(lambda result: jsonrpc.result_reply(request, result),
                       lambda failure: jsonrpc.error_reply(request, self._error(request,
                                                                                 failure)))
        d.addCallback(lambda reply: None if request.is_notification else reply)
        return d

    def _run(self, request):
        command = request.method
        if command not in self.commands.names():
            raise RPCError(METHOD_NOT_FOUND, f"unknown command {command[:80]!r}; "
                                             "try 'help'")
        function = getattr(self.commands, command)
        params = request.params
        try:
            if isinstance(params, dict):
                return function(**params)
            return function(*params)
        except TypeError as e:
            if e.__traceback__.tb_next is None:      # the call itself, not deeper
                raise RPCError(INVALID_PARAMS, f"{command}: {e}") from None
            raise

    def _error(self, request, failure):
        if failure.check(RPCError):
            return failure.value
        if failure.check(AdminError):
            return RPCError(BAD_REQUEST, str(failure.value))
        self.log.failure("admin command {command} failed", failure, command=request.method)
        return RPCError(INTERNAL_ERROR, f"{request.method} failed: {failure.value}")

    def _send(self, payload):
        self.transport.write(jsonrpc.encode(payload) + b"\n")


class AdminFactory(protocol.ServerFactory):
    """Makes admin sessions over one `AdminCommands`."""

    noisy = False

    def __init__(self, commands):
        self.commands = commands

    def buildProtocol(self, addr):
        return AdminSession(self.commands)
