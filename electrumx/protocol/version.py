"""Protocol version negotiation: the maths of `server.version`, nothing else.

Versions are dotted numbers with at least one dot ("1.4", "1.4.2").  They are
compared as tuples, with trailing zero revisions dropped so that "1.6" and
"1.6.0" name the same version.  The server speaks PROTOCOL_MIN..PROTOCOL_MAX;
the client sends one version or a [min, max] pair (omitted means "1.4").  The
negotiated version is the highest both speak (REFERENCE §1.5):

    version = min(client_max, PROTOCOL_MAX), refused if below max(client_min, PROTOCOL_MIN)

This is ElectrumX 2.0's rule, which also speaks 1.4 to 1.7.  The one visible
difference is the spelling: ElectrumX names its maximum "1.7.0", so a client
whose range goes past 1.7 is told "1.7.0" there and "1.7" here; both name the
same version.
"""

V1_4, V1_4_2, V1_6, V1_7 = (1, 4), (1, 4, 2), (1, 6), (1, 7)
"""The versions that changed methods (see the table in `protocol.methods`)."""
PROTOCOL_MIN = V1_4
PROTOCOL_MAX = V1_7
DEFAULT_CLIENT_VERSION = "1.4"


class UnsupportedVersion(ValueError):
    """The client's request is malformed or shares no version with the server."""


def parse_version(text) -> tuple:
    """(1, 4, 2) from "1.4.2"; raises UnsupportedVersion for anything else."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) < 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise UnsupportedVersion(f"bad protocol version: {text!r}"[:120])
    version = tuple(int(p) for p in parts)
    while len(version) > 2 and version[-1] == 0:
        version = version[:-1]
    return version


def version_string(version: tuple) -> str:
    """"1.4.2" from (1, 4, 2)."""
    return ".".join(str(part) for part in version)


def negotiate_version(request=None) -> tuple:
    """The version to speak with a client that sent `request`.

    `request` is a version string, a [min, max] list of them, or None.
    Raises UnsupportedVersion when it is malformed or no version is shared.
    """
    if request is None:
        request = DEFAULT_CLIENT_VERSION
    if isinstance(request, (list, tuple)) and len(request) == 2:
        client_min, client_max = (parse_version(v) for v in request)
    else:
        client_min = client_max = parse_version(request)
    version = min(client_max, PROTOCOL_MAX)
    if version < max(client_min, PROTOCOL_MIN):
        raise UnsupportedVersion(
            f"unsupported protocol version: {version_string(client_min)}.."
            f"{version_string(client_max)} (this server speaks "
            f"{version_string(PROTOCOL_MIN)}..{version_string(PROTOCOL_MAX)})")
    return version
