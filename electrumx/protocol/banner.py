"""The text of `server.banner`: the operator's file with a few values filled in.

BANNER_FILE (or TOR_BANNER_FILE for sessions that came through Tor) may use
$SERVER_VERSION, $SERVER_SUBVERSION, $DAEMON_VERSION, $DAEMON_SUBVERSION and
$DONATION_ADDRESS.  The file is read on every call so an edit shows without a
restart; the node is asked for its version only when the text uses it.
"""

from electrumx.logs import Logger

from electrumx import SERVER_VERSION, __version__

log = Logger()

DEFAULT_BANNER = f"You are connected to a {SERVER_VERSION} server."


def daemon_version_string(version: int) -> str:
    """"29.1.0" from getnetworkinfo's version number 290100."""
    return f"{version // 10_000}.{version % 10_000 // 100}.{version % 100}"


def read_banner_file(path):
    """The file's text, or None (logged) when it cannot be read as UTF-8."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as error:
        log.error("cannot read banner file {path}: {error}", path=path, error=error)
        return None


async def server_banner(settings, reader, is_tor: bool) -> str:
    """The banner for a session; `reader` is the IChainReader that asks the node, whose
    errors propagate as DaemonError."""
    path = (settings.tor_banner_file if is_tor and settings.tor_banner_file
            else settings.banner_file)
    text = read_banner_file(path) if path else None
    if text is None:
        return DEFAULT_BANNER
    values = {
        "$SERVER_VERSION": __version__,
        "$SERVER_SUBVERSION": SERVER_VERSION,
        "$DONATION_ADDRESS": settings.donation_address or "",
    }
    if "$DAEMON_" in text:
        info = await reader.node_network_info()
        values["$DAEMON_VERSION"] = daemon_version_string(info["version"])
        values["$DAEMON_SUBVERSION"] = info["subversion"]
    for name, value in values.items():
        text = text.replace(name, value)
    return text
