"""Node URLs: parsing DAEMON_URL entries, their credentials, and showing them without
the password.

A URL gives its user and password, or none: then the node's cookie file
answers for them.  bitcoind writes a new cookie (`__cookie__:<random>`) in its
data directory at every start, so the file is read again whenever the node
refuses what was read before.
"""

import os
from urllib.parse import unquote, urlsplit


class DaemonURLError(ValueError):
    """A DAEMON_URL entry that cannot be a node's JSON-RPC address."""


class CookieUnreadable(Exception):
    """The node's cookie file cannot be read (yet: a starting node writes it)."""


class CookieFile:
    """The node's RPC cookie: read once, and again after `forget()`."""

    def __init__(self, path: str):
        self.path = path
        self._userinfo: bytes | None = None

    def userinfo(self) -> bytes:
        """`__cookie__:<password>`, as the file holds it."""
        if self._userinfo is None:
            try:
                with open(self.path, "rb") as f:
                    value = f.read().strip()
            except OSError as e:
                raise CookieUnreadable(f"cannot read the node's cookie {self.path}: "
                                       f"{e.strerror}") from None
            if b":" not in value:
                raise CookieUnreadable(f"{self.path} is not a node's cookie (user:password)")
            self._userinfo = value
        return self._userinfo

    def forget(self):
        """The node refused the cookie: read the file again next time (it restarted)."""
        self._userinfo = None


def default_cookie_path(coin) -> str:
    """Where the coin's node keeps its cookie by default, for this process's user."""
    return os.path.join(os.path.expanduser("~"), coin.DATA_DIR, coin.DATA_SUBDIR, ".cookie")


class DaemonURL:
    """One node's JSON-RPC address, with its credentials held apart.

    `str()` and `repr()` never show the password, so a DaemonURL can be
    logged anywhere.  A URL without credentials authenticates with `cookie`,
    the node's CookieFile.
    """

    __slots__ = ("scheme", "host", "port", "path", "user", "password", "cookie")

    def __init__(self, scheme, host, port, path, user, password, cookie=None):
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.user = user
        self.password = password
        self.cookie = cookie

    @property
    def has_credentials(self) -> bool:
        return bool(self.user or self.password)

    @property
    def endpoint_url(self) -> bytes:
        """The URL to send requests to, without credentials, as bytes for Agent."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}".encode()

    @property
    def userinfo(self) -> bytes:
        """`user:password` for HTTP basic auth (CookieUnreadable from a cookie file)."""
        if self.cookie is not None:
            return self.cookie.userinfo()
        return f"{self.user}:{self.password}".encode()

    def redacted(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}:***@" if self.has_credentials else ""
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


def parse_daemon_urls(text: str, default_port: int, cookie_path: str):
    """Parse a comma-separated DAEMON_URL into a non-empty list of DaemonURLs; those
    without credentials read the cookie at `cookie_path` (one file for them all)."""
    urls = [parse_daemon_url(part, default_port) for part in text.split(",") if part.strip()]
    if not urls:
        raise DaemonURLError("DAEMON_URL names no node")
    cookie = CookieFile(cookie_path)
    for url in urls:
        if not url.has_credentials:
            url.cookie = cookie
    return urls


def _scrub(message: str) -> str:
    # urllib's messages may echo the netloc, password included.
    return message.split("'")[0].strip() or "invalid"
