"""Asking the node on a client's behalf: node errors become DAEMON_ERROR replies."""

from electrumx.interfaces import DaemonError
from electrumx.protocol.errors import DAEMON_ERROR, RPCError


async def ask_daemon(request):
    """Await a daemon Deferred (or coroutine); a DaemonError becomes RPCError(DAEMON_ERROR)."""
    try:
        return await request
    except DaemonError as error:
        raise RPCError(DAEMON_ERROR, f"daemon error: {error.message}") from None
