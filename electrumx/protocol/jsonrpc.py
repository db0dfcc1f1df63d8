"""JSON-RPC 1.0/2.0 messages: parsing requests and building replies, without sockets.

A message is one request object, or a batch (a non-empty array of them).  A
request without an id is a notification and gets no reply.  Replies follow
the request's dialect: 2.0 requests get `{"jsonrpc": "2.0", ...}` with either
`result` or `error`; 1.0 requests get both keys, one of them null.
"""

import orjson

from electrumx.protocol.errors import INVALID_REQUEST, PARSE_ERROR, RPCError

_NO_ID = object()


class Request:
    """One parsed request."""

    __slots__ = ("method", "params", "id", "v2")

    def __init__(self, method, params, request_id, v2):
        self.method = method
        self.params = params
        self.id = request_id
        self.v2 = v2

    @property
    def is_notification(self):
        return self.id is _NO_ID


def parse_message(line: bytes):
    """(requests, is_batch) from one framed message.

    Raises RPCError(PARSE_ERROR) for bad JSON and RPCError(INVALID_REQUEST)
    for an empty batch or a message that is not an object or array.  A bad
    item of a batch becomes an RPCError in the list, answered on its own.
    """
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise RPCError(PARSE_ERROR, "invalid JSON") from None
    if isinstance(message, list):
        if not message:
            raise RPCError(INVALID_REQUEST, "empty batch")
        return [_request(item) for item in message], True
    return [_request(message)], False


def _request(item):
    if not isinstance(item, dict):
        return RPCError(INVALID_REQUEST, "a request must be a JSON object")
    request_id = item.get("id", _NO_ID)
    if request_id is not _NO_ID and not isinstance(request_id, (int, str, type(None))) or \
            isinstance(request_id, bool):
        return RPCError(INVALID_REQUEST, "invalid request id")
    method = item.get("method")
    if not isinstance(method, str):
        return RPCError(INVALID_REQUEST, "a request needs a method name")
    params = item.get("params", [])
    if not isinstance(params, (list, dict)):
        return RPCError(INVALID_REQUEST, "params must be an array or an object")
    return Request(method, params, request_id, item.get("jsonrpc") == "2.0")


def result_reply(request: Request, result) -> dict:
    if request.v2:
        return {"jsonrpc": "2.0", "id": request.id, "result": result}
    return {"id": request.id, "result": result, "error": None}


def error_reply(request, error: RPCError) -> dict:
    """An error reply; `request` may be None when the message could not be parsed."""
    body = {"code": error.code, "message": error.message}
    request_id = None if request is None or request.is_notification else request.id
    if request is None or request.v2:
        return {"jsonrpc": "2.0", "id": request_id, "error": body}
    return {"id": request_id, "result": None, "error": body}


def notification(method: str, params) -> dict:
    """A server-to-client notification."""
    return {"jsonrpc": "2.0", "method": method, "params": params}


def encode(payload) -> bytes:
    return orjson.dumps(payload)
