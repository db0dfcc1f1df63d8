"""Checks of request parameters: each returns the value in the form handlers use,
or raises RPCError(BAD_REQUEST) naming what was wrong.

JSON gives us str, int, float, bool, list, dict and None; Python's bool is an
int, so integer checks exclude it explicitly.
"""

from string import hexdigits

from electrumx.chain.hashes import hashX_from_scripthash, hex_str_to_hash
from electrumx.protocol.errors import BAD_REQUEST, INVALID_PARAMS, RPCError

_HEX_DIGITS = frozenset(hexdigits)
SHOWN_CHARS = 80
"""Longest piece of a bad value echoed back in an error message."""
MAX_SCRIPT_BYTES = 10_000
"""Longest output script taken (protocol 1.7's scriptPubKey methods): Bitcoin's script
size limit, above which an output can never be spent.  (Bitcoin SV lifted that limit;
its rare longer scripts are not served through 1.7.)"""
MAX_HEIGHT = 2**31 - 1
"""Highest from_height / to_height taken: Fulcrum reads them as 32-bit signed ints and
refuses more, so we answer as it does."""
MAX_OUTPUT_INDEX = 0xFFFF_FFFF
"""Highest output index an input can name (its prevout index is 4 bytes)."""


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


def script_pubkey(value) -> bytes:
    """An output script in hex (protocol 1.7): 1 to MAX_SCRIPT_BYTES bytes."""
    if value and _is_hex(value) and len(value) <= 2 * MAX_SCRIPT_BYTES:
        return bytes.fromhex(value)
    raise RPCError(BAD_REQUEST, f"{shown(value)} should be a script in hex, "
                                f"of 1 to {MAX_SCRIPT_BYTES:,d} bytes")


def hex_data(value, name: str) -> str:
    """A string of hex digits, of any length (server.ping's padding)."""
    if isinstance(value, str) and _HEX_DIGITS.issuperset(value):
        return value
    raise RPCError(BAD_REQUEST, f"{name} should be a hex string, not {shown(value)}")


def bounded_hex_list(value, name: str, most: int, most_chars: int) -> list:
    """A list of 1 to `most` hex strings of at most `most_chars` digits each."""
    if not isinstance(value, list) or not 1 <= len(value) <= most:
        raise RPCError(BAD_REQUEST, f"{name} should be a list of 1 to {most} hex strings, "
                                    f"not {shown(value)}")
    for item in value:
        if not isinstance(item, str) or len(item) > most_chars:
            raise RPCError(BAD_REQUEST, f"each of {name} should be a hex string of at most "
                                        f"{most_chars:,d} digits, not {shown(item)}")
    return hex_string_list(value, name)


def _height(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value <= MAX_HEIGHT)


def history_range(from_height, to_height):
    """(from_height, to_height or None) of a paged get_history, checked as Fulcrum checks them.

    from_height is inclusive, to_height exclusive; to_height -1 means "to the tip,
    and the mempool too" (None here).  Fulcrum's errors, code and words.
    """
    if not _height(from_height):
        raise RPCError(INVALID_PARAMS, "Bad from_height argument")
    if type(to_height) is int and to_height == -1:
        return from_height, None
    if not _height(to_height) or to_height < from_height:
        raise RPCError(INVALID_PARAMS, "Bad to_height argument")
    return from_height, to_height


def output_index(value) -> int:
    """An outpoint's output index (txout_idx): an int from 0 to MAX_OUTPUT_INDEX."""
    index = non_negative_int(value, "txout_idx")
    if index > MAX_OUTPUT_INDEX:
        raise RPCError(BAD_REQUEST, f"txout_idx {index:,d} is past the last output index, "
                                    f"{MAX_OUTPUT_INDEX:,d}")
    return index
