"""Node URLs: parsing DAEMON_URL entries, and showing them without the password."""

from urllib.parse import unquote, urlsplit


class DaemonURLError(ValueError):
    """A DAEMON_URL entry that cannot be a node's JSON-RPC address."""


class DaemonURL:
    """One node's JSON-RPC address, with its credentials held apart.

    `str()` and `repr()` never show the password, so a DaemonURL can be
    logged anywhere.
    """

    __slots__ = ("scheme", "host", "port", "path", "user", "password")

    def __init__(self, scheme, host, port, path, user, password):
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.user = user
        self.password = password

    @property
    def endpoint_url(self) -> bytes:
        """The URL to send requests to, without credentials, as bytes for Agent."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}".encode()

    @property
    def userinfo(self) -> bytes:
        """`user:password` for HTTP basic auth."""
        return f"{self.user}:{self.password}".encode()

    def redacted(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}:***@" if self.user or self.password else ""
        return f"{self.scheme}://{user}{host}:{self.port}{self.path}"

    __str__ = redacted

    def __repr__(self):
        return f"DaemonURL({self.redacted()!r})"

    def __eq__(self, other):
        return isinstance(other, DaemonURL) and all(
            getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __hash__(self):
        return hash((self.host, self.port, self.path))


def parse_daemon_url(text: str, default_port: int) -> DaemonURL:
    """Parse one `[http://][user:password@]host[:port][/path]` entry.

    The port defaults to the coin's RPC port.  Error messages never include
    the password.
    """
    text = text.strip()
    if not text:
        raise DaemonURLError("empty daemon URL")
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise DaemonURLError(f"malformed daemon URL ({_scrub(str(e))})") from None
    if parts.scheme not in ("http", "https"):
        raise DaemonURLError(f"daemon URL scheme must be http or https, not {parts.scheme!r}")
    if not parts.hostname:
        raise DaemonURLError("daemon URL has no host")
    if parts.query or parts.fragment:
        raise DaemonURLError("daemon URL must not have a query or fragment")
    return DaemonURL(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or default_port,
        path=parts.path or "/",
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def parse_daemon_urls(text: str, default_port: int):
    """Parse a comma-separated DAEMON_URL into a non-empty list of DaemonURLs."""
    urls = [parse_daemon_url(part, default_port) for part in text.split(",") if part.strip()]
    if not urls:
        raise DaemonURLError("DAEMON_URL names no node")
    return urls


def _scrub(message: str) -> str:
    # urllib's messages may echo the netloc, password included.
    return message.split("'")[0].strip() or "invalid"
