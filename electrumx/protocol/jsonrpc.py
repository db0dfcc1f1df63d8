"""JSON-RPC 1.0/2.0 messages: parsing requests and building replies, without sockets.

A message is one request object, or a batch (a non-empty array of them).  A
request without an id is a notification and gets no reply.  Replies follow
the request's dialect: 2.0 requests get `{"jsonrpc": "2.0", ...}` with either
`result` or `error`; 1.0 requests (no "jsonrpc" member) get both keys, one of
them null.

Messages go through orjson, except those holding an integer beyond 64 bits:
orjson reads such an integer as a float and cannot write one, so those few
messages are read and written with the standard library's json, which keeps
every integer exact.
"""

import json

import orjson

from electrumx.protocol.errors import INVALID_REQUEST, PARSE_ERROR, RPCError

_NO_ID = object()

LONG_NUMBER = b"0" * 19
"""Nineteen digits in a row: the shortest integer orjson may not hold exactly
(below -2**63, or from 20 digits above 2**64 - 1).  `_DIGITS_AS_ZERO` maps every
digit of a line to 0, so one substring search finds any candidate; a hex string
with such a run only sends its message down the exact path for nothing."""
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")

MAX_CONTAINERS = 10_000
"""Most arrays and objects one message may hold.  A batch of a thousand requests
holds about three thousand; a megabyte of nothing but nested brackets holds half a
million, which took orjson 170 ms to build and the reactor as long again to free.
Counting the brackets (an upper bound: a string may hold some) costs about a
millisecond per megabyte."""
COUNT_CONTAINERS_FROM = 4 * MAX_CONTAINERS
"""Shorter messages cannot hold more containers than that: they are not counted."""


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


class InvalidRequest(RPCError):
    """A batch item or message that is not a valid request (-32600).

    It keeps the request's id when one could be read, so the client's pending
    call gets its answer, and the request's dialect for the reply's form.
    """

    is_notification = False

    def __init__(self, message: str, request_id=None, v2=True):
        super().__init__(INVALID_REQUEST, message)
        self.id = request_id
        self.v2 = v2


def parse_message(line: bytes, max_batch=None):
    """(requests, is_batch) from one framed message.

    Raises RPCError(PARSE_ERROR) for bad JSON or more than MAX_CONTAINERS arrays
    and objects, and RPCError(INVALID_REQUEST)
    for an empty batch, a batch of more than `max_batch` requests or a
    message that is not an object or array.  A bad item of a batch becomes
    an InvalidRequest in the list, answered on its own.
    """
    message = _loads(line)
    if isinstance(message, list):
        if not message:
            raise RPCError(INVALID_REQUEST, "empty batch")
        if max_batch is not None and len(message) > max_batch:
            raise RPCError(INVALID_REQUEST, f"batch of {len(message):,d} requests: "
                                            f"at most {max_batch:,d} in one batch")
        return [_request(item) for item in message], True
    return [_request(message)], False


def _loads(line: bytes):
    if len(line) >= COUNT_CONTAINERS_FROM and \
            line.count(b"[") + line.count(b"{") > MAX_CONTAINERS:
        raise RPCError(PARSE_ERROR, f"too many arrays and objects: at most "
                                    f"{MAX_CONTAINERS:,d} in one message")
    if LONG_NUMBER in line.translate(_DIGITS_AS_ZERO):
        return _loads_exact(line)
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        raise RPCError(PARSE_ERROR, "invalid JSON") from None


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _loads_exact(line: bytes):
    """The standard library's reading, as strict as orjson's (UTF-8, no NaN or Infinity)."""
    try:
        return json.loads(line.decode(), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):   # bad JSON, UTF-8 or a 4,300-digit number
        raise RPCError(PARSE_ERROR, "invalid JSON") from None


def _request(item):
    if not isinstance(item, dict):
        return InvalidRequest("a request must be a JSON object")
    version = item.get("jsonrpc", _NO_ID)
    v2 = version is not _NO_ID
    request_id = item.get("id", _NO_ID)
    if request_id is not _NO_ID and not isinstance(request_id, (int, str, type(None))) or \
            isinstance(request_id, bool):
        return InvalidRequest("invalid request id", None, v2)
    answer_id = None if request_id is _NO_ID else request_id
    if v2 and version != "2.0":
        return InvalidRequest('"jsonrpc" must be "2.0"', answer_id)
    method = item.get("method")
    if not isinstance(method, str):
        return InvalidRequest("a request needs a method name", answer_id, v2)
    params = item.get("params", [])
    if not isinstance(params, (list, dict)):
        return InvalidRequest("params must be an array or an object", answer_id, v2)
    return Request(method, params, request_id, v2)


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


def invalid_reply(invalid: InvalidRequest) -> dict:
    """The answer to an invalid request: its id when readable, in its dialect."""
    return error_reply(invalid, invalid)


def notification(method: str, params) -> dict:
    """A server-to-client notification."""
    return {"jsonrpc": "2.0", "method": method, "params": params}


def encode(payload) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:           # an integer beyond 64 bits (an echoed id)
        return _dumps_exact(payload)


def _fragment_as_value(value):
    if isinstance(value, orjson.Fragment):
        return orjson.loads(orjson.dumps(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


def _dumps_exact(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=_fragment_as_value).encode()
