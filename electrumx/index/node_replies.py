"""What a node's JSON-RPC reply means: a result, the node's error, or no answer at all.

A reply that is not the answer asked for (not an object, a batch of the
wrong length or of other ids, neither result nor error, a result of the
wrong kind, a node warming up) is `NodeUnavailable`: the node's state, which
the node client waits out like an outage.  An error object is `DaemonError`,
an answer the caller reads by its code.
"""

from electrumx.interfaces import DaemonError

MISC_ERROR = -1
"""bitcoind's code for an error of no particular kind (RPC_MISC_ERROR); also the code
given to an error object without an integer code, and to our own refusal of a node."""

NO_SUCH_TX = -5
"""bitcoind's "invalid address or key": to getrawtransaction, a transaction it does not
have (not in its mempool, and not in its index or without one)."""

WARMUP = -28
"""bitcoind is still starting (loading its block index, verifying blocks): ask again."""

PARSE_ERROR = -32700
"""JSON-RPC's parse error; ours for a result that holds no usable answer."""

METHOD_NOT_FOUND = -32601
"""JSON-RPC's "method not found": the node lacks a call (an older or another node)."""


class NodeUnavailable(Exception):
    """The node gave no answer (unreachable, warming up, or garbage): retry it or the next."""


def single_result(reply, method: str):
    """The result of the reply to one request."""
    if not isinstance(reply, dict):
        raise NodeUnavailable(f"a reply to {method} that is not a JSON-RPC object")
    return result_of(reply, method)


def batch_items(reply, first_id: int, count: int, method: str):
    """The reply objects to ids first_id.. in order; NodeUnavailable if any is missing."""
    if not isinstance(reply, list) or len(reply) != count:
        raise NodeUnavailable(f"a batch reply to {count} {method} requests that is not a "
                              f"list of {count} replies")
    by_id = {item["id"]: item for item in reply
             if isinstance(item, dict) and type(item.get("id")) is int}
    items = [by_id.get(first_id + i) for i in range(count)]
    if None in items:
        raise NodeUnavailable(f"a batch reply to {method} without an answer to each request")
    return items


def result_of(reply: dict, method: str):
    """The result of one reply object; DaemonError for its error, NodeUnavailable if neither."""
    err = reply.get("error")
    if err:
        if isinstance(err, dict):
            code = err.get("code")
            raise DaemonError(code if type(code) is int else MISC_ERROR,
                              str(err.get("message", "")))
        raise DaemonError(MISC_ERROR, str(err))
    if "result" not in reply:
        raise NodeUnavailable(f"a reply to {method} with neither a result nor an error")
    return reply["result"]


def checked(result, convert, method: str):
    """`convert(result)` (`result` itself without `convert`): a result it refuses
    (TypeError or ValueError) is garbage from the node, so NodeUnavailable."""
    if convert is None:
        return result
    try:
        return convert(result)
    except (TypeError, ValueError):
        raise NodeUnavailable(f"a {method} result of the wrong kind") from None


def as_height(result) -> int:
    """A `convert` for getblockcount: a height, or ValueError."""
    if type(result) is not int or result < 0:
        raise ValueError("not a height")
    return result


def as_block_hash(result) -> str:
    """A `convert` for getblockhash: a display-hex block hash, or ValueError."""
    if not isinstance(result, str) or len(result) != 64:
        raise ValueError("not a block hash")
    bytes.fromhex(result)
    return result


def warm_up_message(reply):
    """The node's warming-up message if the reply (or any item of a batch) is WARMUP, else None."""
    items = reply if isinstance(reply, list) else [reply]
    for item in items:
        err = item.get("error") if isinstance(item, dict) else None
        if isinstance(err, dict) and err.get("code") == WARMUP:
            return str(err.get("message", ""))
    return None
