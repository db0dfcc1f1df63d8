"""The errors a request can end in, with the codes Electrum clients know.

A handler raises `RPCError(code, message)` for anything the client did wrong
or the server could not do; the session turns it into a JSON-RPC error reply.
"""


class RPCError(Exception):
    """An error reply to one request; the connection stays open."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code, self.message = code, message


# Electrum/ElectrumX codes
BAD_REQUEST = 1
DAEMON_ERROR = 2
HISTORY_TOO_LONG = 10001
"""A history too long to send.  Protocol 1.7 standardises this code (its spec says a
server SHOULD use it for `blockchain.scriptpubkey.*`); ElectrumX 2.0 sends it at every
version, for get_history and subscribe alike, and so do we (ElectrumX 1.x sent 1)."""
# JSON-RPC codes
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
EXCESSIVE_RESOURCE_USAGE = -101
SERVER_BUSY = -102            # "server busy - request timed out"
RESPONSE_TOO_LARGE = -32600   # aiorpcx sends "response too large" with -32600 (see REFERENCE §1.4)


class ReplyAndDisconnect(RPCError):
    """Reply with this error, then close the connection."""
