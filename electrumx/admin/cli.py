"""`electrumx-rpc`: the operator's command line for the admin RPC.

    electrumx-rpc getinfo
    electrumx-rpc sessions
    electrumx-rpc --json query bcrt1q...
    electrumx-rpc ban 203.0.113.0/24

Tables for people by default, `--json` (anywhere on the line) for scripts.
Exit status: 0 on success, 1 when the server cannot be reached or the
command fails (with the reason on stderr), 2 for a wrong command line.  A
reader that stops early (`electrumx-rpc sessions | head`) ends it quietly,
with status 0: the server did answer.  It uses a plain socket, not the
reactor, so it starts fast and works from any script.
"""

import argparse
import json
import os
import socket
import sys

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

# command -> (help, how its arguments become params)
#   "none": no arguments; "list": all arguments (at least one) as one list;
#   "optional-list": the same, or nothing; "one": one argument; "words": all
#   arguments joined by spaces; "optional-int": none or one whole number
COMMANDS = {
    "getinfo": ("the server at a glance", "none"),
    "sessions": ("client sessions", "none"),
    "groups": ("session groups (subnets) and their costs", "none"),
    "peers": ("peer servers", "none"),
    "banned": ("banned addresses and subnets", "none"),
    "cache": ("cache sizes and hit rates", "none"),
    "flush": ("write the indexer's cache to disk now", "none"),
    "compact": ("compact the LevelDB index", "none"),
    "backup": ("copy the index, consistent as of now, into an empty directory", "one"),
    "stop": ("shut the server down cleanly", "none"),
    "help": ("the commands the server knows", "none"),
    "disconnect": ("close sessions by id or group name", "list"),
    "kick": ("close sessions from addresses or subnets", "list"),
    "ban": ("refuse addresses or subnets and close their sessions", "list"),
    "unban": ("lift bans", "list"),
    "log": ("toggle request logging of sessions (by id)", "list"),
    "daemon_url": ("set the node URLs (none given: move to the next)", "optional-list"),
    "loglevel": ("debug, info, warn, error or critical", "one"),
    "add_peer": ("add a peer by its real name: 'host t50001 s50002'", "words"),
    "reorg": ("test aid: back out N blocks (default 3)", "optional-int"),
    "query": ("history, UTXOs and balance of addresses or hex scripts", "list"),
}


DEFAULT_TIMEOUT = 600.0
UNTIMED_COMMANDS = ("backup",)
"""Commands whose answer comes when their work is done, however long that takes."""


def timeout_for(command, given):
    """Seconds to wait for the answer to `command`, None for no limit."""
    if given is None:
        return None if command in UNTIMED_COMMANDS else DEFAULT_TIMEOUT
    return given or None


class RPCFailure(Exception):
    """The server could not be reached, or answered with an error."""


def call(host, port, command, params, timeout):
    """Send one request and return its result; RPCFailure on any failure."""
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": command, "params": params})
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request.encode() + b"\n")
            reply = _read_line(sock)
    except ConnectionRefusedError:
        raise RPCFailure(f"cannot reach the admin RPC at {host}:{port} (connection refused): "
                         "is electrumx running, with rpc:// in SERVICES?") from None
    except socket.timeout:
        raise RPCFailure(f"no answer from {host}:{port} within {timeout:g}s") from None
    except OSError as e:
        raise RPCFailure(f"cannot reach the admin RPC at {host}:{port}: {e}") from None
    try:
        message = json.loads(reply)
    except ValueError:
        raise RPCFailure(f"{host}:{port} did not answer in JSON-RPC") from None
    if message.get("error"):
        raise RPCFailure(message["error"].get("message", str(message["error"])))
    return message.get("result")


def _read_line(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            break
    if not chunks:
        raise RPCFailure("the server closed the connection without answering")
    return b"".join(chunks)


class UsageError(Exception):
    """A wrong command line."""


def params_for(command, values, limit=None):
    """The JSON-RPC params of a command from its command-line arguments."""
    kind = COMMANDS[command][1]
    if kind == "none":
        if values:
            raise UsageError(f"{command} takes no arguments")
        return []
    if kind == "list":
        if not values:
            raise UsageError(f"{command} needs at least one argument")
        return [values] + ([limit] if command == "query" and limit is not None else [])
    if kind == "optional-list":
        return [values] if values else []
    if kind == "one":
        if len(values) != 1:
            raise UsageError(f"{command} takes exactly one argument")
        # The server resolves no relative path: its working directory is not ours.
        return [os.path.abspath(values[0])] if command == "backup" else values
    if kind == "words":
        if not values:
            raise UsageError(f"{command} needs an argument")
        return [" ".join(values)]
    if len(values) > 1 or (values and not values[0].isdigit()):       # optional-int
        raise UsageError(f"{command} takes one optional whole number")
    return [int(values[0])] if values else []


# ---- output for people ---------------------------------------------------

def render(command, result) -> str:
    if command == "query":
        return "\n\n".join(_render_query(item) for item in result)
    if isinstance(result, list) and result and all(isinstance(r, dict) for r in result):
        return _table(result)
    if isinstance(result, list):
        return "\n".join(map(str, result)) if result else "(none)"
    if isinstance(result, dict):
        width = max((len(k) for k in result), default=0)
        return "\n".join(f"{k:<{width}}  {_cell(v)}" for k, v in result.items())
    return str(result)


def _cell(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) if value else "-"
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _table(rows) -> str:
    columns = list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _render_query(item) -> str:
    balance = item["balance"]

    def amount(sats):
        return format_amount(sats, item["unit"], item["sat_per_unit"])

    lines = [f"{item['item']}  (script {item['script']})",
             f"  balance: {amount(balance['confirmed'])} confirmed, "
             f"{amount(balance['unconfirmed'])} unconfirmed",
             f"  history: {len(item['history'])} transactions"
             + (" (truncated)" if item["history_truncated"] else "")]
    lines += [f"    {h['txid']}  height {h['height']}" for h in item["history"]]
    lines.append(f"  utxos: {len(item['utxos'])}"
                 + (" (truncated)" if item["utxos_truncated"] else ""))
    lines += [f"    {u['txid']}:{u['out']}  height {u['height']}  value {amount(u['value'])}"
              for u in item["utxos"]]
    return "\n".join(lines)


def format_amount(sats: int, unit: str, sat_per_unit: int) -> str:
    """`150000000` as "1.50000000 BTC (150000000 sat)": exact, whatever its size."""
    whole, fraction = divmod(abs(sats), sat_per_unit)
    digits = len(str(sat_per_unit)) - 1
    sign = "-" if sats < 0 else ""
    return f"{sign}{whole}.{fraction:0{digits}d} {unit} ({sats} sat)"


# ---- entry point -----------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="electrumx-rpc", description="Ask a running electrumx server over its admin RPC.",
        epilog="commands: " + "; ".join(f"{name} ({text})"
                                        for name, (text, _kind) in COMMANDS.items()))
    p.add_argument("--host", default=DEFAULT_HOST, help="admin RPC address (default %(default)s)")
    p.add_argument("-p", "--port", type=int, default=DEFAULT_PORT,
                   help="admin RPC port (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the raw JSON result")
    p.add_argument("--timeout", type=float,
                   help=f"seconds to wait for an answer, 0 for no limit (default "
                        f"{DEFAULT_TIMEOUT:g}; none for {', '.join(UNTIMED_COMMANDS)})")
    p.add_argument("--limit", type=int, help="query: most history entries and UTXOs per item")
    p.add_argument("command", choices=sorted(COMMANDS), metavar="command")
    p.add_argument("arguments", nargs="*")
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_intermixed_args(argv)
    try:
        params = params_for(args.command, args.arguments, args.limit)
    except UsageError as e:
        p.error(str(e))
    try:
        result = call(args.host, args.port, args.command, params,
                      timeout_for(args.command, args.timeout))
    except RPCFailure as e:
        print(f"electrumx-rpc: {args.command}: {e}", file=sys.stderr)
        return 1
    return write_out(json.dumps(result, indent=2) if args.json else render(args.command, result))


def write_out(text: str) -> int:
    """Print `text`; a reader that has gone (`| head`) is no error and no traceback."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would try to flush stdout again at exit and complain: point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
