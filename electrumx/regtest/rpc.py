"""bitcoind's JSON-RPC over HTTP: basic auth, batches, error codes, statuses, failure modes.

As bitcoind does: a wrong or missing password is HTTP 401; a single request
that fails is HTTP 500 with the error in the body, except an unknown method
(404) and an invalid request object (400); a batch is always HTTP 200 with
one reply per request.  For tests, the resource can also misbehave: answer
-28 (warming up), plain HTTP 500, corrupt JSON, valid JSON that is not the
reply asked for, or answer late.
"""

import base64
import hmac
import inspect

import orjson
from twisted.internet import defer, task
from twisted.web import resource, server

from electrumx.logs import Logger
from electrumx.regtest.codes import (RPC_IN_WARMUP, RPC_INTERNAL_ERROR, RPC_INVALID_REQUEST,
                                     RPC_METHOD_NOT_FOUND, RPC_MISC_ERROR, RPC_PARSE_ERROR)
from electrumx.regtest.control import PREFIX
from electrumx.regtest.node import NodeError
from electrumx.regtest.rpc_methods import usage

WARMUP = {"code": RPC_IN_WARMUP, "message": "Loading block index..."}
CORRUPT_BODY = b'{"result": [1, 2, "trunc'
MISSHAPEN_BODY = b'{"jsonrpc": "2.0"}'
"""Valid JSON but no JSON-RPC reply: neither a result nor an error."""


def method_table(*providers):
    """{name: bound method} of every public method of the providers."""
    table = {}
    for provider in providers:
        for name, method in inspect.getmembers(provider, inspect.ismethod):
            if not name.startswith("_"):
                table[name] = method
    return table


class Failures:
    """The failure mode the resource is in: None, "warmup", "http500", "corrupt",
    "misshapen" (a batch is answered one reply short, a single call with an
    object that is no reply) or "slow"."""

    def __init__(self):
        self.mode = None
        self.slow_secs = 0.5


class RPCResource(resource.Resource):
    """The HTTP side of the node: one POST is one request or one batch."""

    isLeaf = True
    log = Logger()

    def __init__(self, methods: dict, user: str, password: str, clock):
        super().__init__()
        self.methods = dict(methods, help=self.help)
        self.clock = clock
        self.failures = Failures()
        self._auth = b"Basic " + base64.b64encode(f"{user}:{password}".encode())

    def help(self, command=None):
        """help ( "command" ): the methods, or one method's usage."""
        if command is None:
            return "\n".join(usage(name, m) for name, m in sorted(self.methods.items()))
        method = self.methods.get(command)
        if method is None:
            return f"help: unknown command: {command}"
        return usage(command, method)

    def render_GET(self, request):
        request.setResponseCode(405)
        return b"JSONRPC server handles only POST requests"

    def render_POST(self, request):
        if not hmac.compare_digest(request.getHeader(b"authorization") or b"", self._auth):
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Basic realm="jsonrpc"')
            return b""
        gone = []
        request.notifyFinish().addErrback(gone.append)     # the client left unanswered
        d = defer.ensureDeferred(self._answer(request.content.read()))
        d.addErrback(self._internal_error)
        d.addCallback(self._finish, request, gone)
        return server.NOT_DONE_YET

    def _internal_error(self, failure):
        self.log.failure("regtest node RPC failed", failure)
        return 500, _reply(None, None, {"code": RPC_INTERNAL_ERROR, "message": "Internal error"})

    @staticmethod
    def _finish(result, request, gone):
        status, payload = result
        if gone:
            return
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        # As bitcoind does; Fulcrum refuses a reply without it (Twisted would send chunks).
        request.setHeader(b"Content-Length", str(len(payload)).encode())
        request.write(payload)
        request.finish()

    async def _answer(self, body):
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 500, _reply(None, None, {"code": RPC_PARSE_ERROR, "message": "Parse error"})
        is_control = isinstance(request, dict) and \
            str(request.get("method", "")).startswith(PREFIX)
        mode = None if is_control else self.failures.mode
        if mode == "http500":
            return 500, b"<html><body>Internal Server Error</body></html>"
        if mode == "corrupt":
            return 200, CORRUPT_BODY
        if mode == "slow":
            await task.deferLater(self.clock, self.failures.slow_secs, lambda: None)
        if isinstance(request, list):
            replies = [(await self._one(item, mode))[1] for item in request]
            if mode == "misshapen":
                replies = replies[:-1]
            return 200, b"[" + b",".join(replies) + b"]"
        if not isinstance(request, dict):
            return 500, _reply(None, None, {"code": RPC_PARSE_ERROR,
                                            "message": "Top-level object parse error"})
        if mode == "misshapen":
            return 200, MISSHAPEN_BODY
        return await self._one(request, mode)

    async def _one(self, request, mode):
        """(HTTP status, reply bytes) of one request object."""
        if not isinstance(request, dict):
            return 400, _reply(None, None, {"code": RPC_INVALID_REQUEST,
                                            "message": "Invalid Request object"})
        rid = request.get("id")
        method = request.get("method")
        params = request.get("params")
        params = [] if params is None else params
        if not isinstance(method, str):
            return 400, _reply(rid, None, {"code": RPC_INVALID_REQUEST,
                                           "message": "Method must be a string"})
        if not isinstance(params, (list, dict)):
            return 400, _reply(rid, None, {"code": RPC_INVALID_REQUEST,
                                           "message": "Params must be an array or object"})
        if mode == "warmup":
            return 500, _reply(rid, None, WARMUP)
        handler = self.methods.get(method)
        if handler is None:
            return 404, _reply(rid, None, {"code": RPC_METHOD_NOT_FOUND,
                                           "message": "Method not found"})
        try:
            signature = inspect.signature(handler)
            bound = signature.bind(**params) if isinstance(params, dict) else \
                signature.bind(*params)
        except TypeError:
            return 500, _reply(rid, None, {"code": RPC_MISC_ERROR,
                                           "message": usage(method, handler)})
        try:
            result = handler(*bound.args, **bound.kwargs)
            if isinstance(result, defer.Deferred):
                result = await result
        except NodeError as e:
            return 500, _reply(rid, None, {"code": e.code, "message": e.message})
        return 200, _reply(rid, result, None)


def _reply(rid, result, error):
    return orjson.dumps({"result": result, "error": error, "id": rid})
