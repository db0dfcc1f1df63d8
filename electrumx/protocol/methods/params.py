"""Checks of request parameters: each returns the value in the form handlers use,
or raises RPCError(BAD_REQUEST) naming what was wrong.

JSON gives us str, int, float, bool, list, dict and None; Python's bool is an
int, so integer checks exclude it explicitly.
"""

from string import hexdigits

from electrumx.chain.hashes import hashX_from_scripthash, hex_str_to_hash
from electrumx.protocol.errors import BAD_REQUEST, RPCError

_HEX_DIGITS = frozenset(hexdigits)
SHOWN_CHARS = 80
"""Longest piece of a bad value echoed back in an error message."""


def shown(value) -> str:
    """A client's value for an error message, cut short so errors stay small."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def _is_hex(value) -> bool:
    return isinstance(value, str) and len(value) % 2 == 0 and _HEX_DIGITS.issuperset(value)


def non_negative_int(value, name: str) -> int:
    """An int >= 0 (not a bool, not a float)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise RPCError(BAD_REQUEST, f"{name} should be a non-negative integer, not {shown(value)}")


def boolean(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise RPCError(BAD_REQUEST, f"{name} should be a boolean, not {shown(value)}")


def hex_string(value, name: str) -> str:
    """A non-empty string of hex digit pairs (a raw transaction)."""
    if value and _is_hex(value):
        return value
    raise RPCError(BAD_REQUEST, f"{name} should be a hex string, not {shown(value)}")


def hex_string_list(value, name: str) -> list:
    """A non-empty list of hex strings (a transaction package)."""
    if not isinstance(value, list) or not value:
        raise RPCError(BAD_REQUEST, f"{name} should be a non-empty list, not {shown(value)}")
    return [hex_string(item, f"each of {name}") for item in value]


def tx_hash(value) -> bytes:
    """The internal-order hash of a display-hex transaction hash."""
    if _is_hex(value) and len(value) == 64:
        return hex_str_to_hash(value)
    raise RPCError(BAD_REQUEST, f"{shown(value)} should be a transaction hash")


def script_hash(value) -> bytes:
    """The index key (hashX) of a client's script hash: 64 hex digits."""
    if _is_hex(value) and len(value) == 64:
        return hashX_from_scripthash(value)
    raise RPCError(BAD_REQUEST, f"{shown(value)} is not a valid script hash")
