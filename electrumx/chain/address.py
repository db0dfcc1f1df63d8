"""Addresses: Base58Check (BIP 13) and Bech32/Bech32m (BIP 173, BIP 350), to and from scripts."""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from electrumx.chain.hashes import double_sha256
from electrumx.chain import script as S

if TYPE_CHECKING:       # the coins are built on this module: named here for the types only
    from electrumx.coins import Coin

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
_BECH32_ALPHABET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32_ALPHABET)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3


class AddressError(ValueError):
    """A string that is not a valid address of the coin asked about."""


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        try:
            n = n * 58 + _B58_INDEX[c]
        except KeyError:
            raise AddressError(f"invalid base58 character {c!r}") from None
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def b58check_encode(payload: bytes) -> str:
    return b58encode(payload + double_sha256(payload)[:4])


def b58check_decode(text: str) -> bytes:
    raw = b58decode(text)
    if len(raw) < 5 or double_sha256(raw[:-4])[:4] != raw[-4:]:
        raise AddressError("bad base58 checksum")
    return raw[:-4]


def _polymod(values: Iterable[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= gen[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: Iterable[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad and bits:
        out.append((acc << (to_bits - bits)) & maxv)
    elif not pad and (bits >= from_bits or (acc << (to_bits - bits)) & maxv):
        raise AddressError("invalid bech32 padding")
    return out


def segwit_encode(hrp: str, version: int, program: bytes) -> str:
    """The bech32 (version 0) or bech32m (version 1+) address of a witness program."""
    const = _BECH32_CONST if version == 0 else _BECH32M_CONST
    data = [version] + _convert_bits(program, 8, 5, True)
    poly = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ const
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_ALPHABET[d] for d in data + checksum)


def segwit_decode(hrp: str, address: str) -> tuple[int, bytes]:
    """Return (version, program) of a segwit address with the given HRP."""
    if address.lower() != address and address.upper() != address:
        raise AddressError("mixed-case bech32 address")
    address = address.lower()
    sep = address.rfind("1")
    if sep < 1 or address[:sep] != hrp or len(address) > 90 or len(address) - sep < 7:
        raise AddressError("not a bech32 address of this network")
    try:
        data = [_BECH32_INDEX[c] for c in address[sep + 1:]]
    except KeyError:
        raise AddressError("invalid bech32 character") from None
    const = _polymod(_hrp_expand(hrp) + data)
    version = data[0]
    if const != (_BECH32_CONST if version == 0 else _BECH32M_CONST):
        raise AddressError("bad bech32 checksum")
    program = bytes(_convert_bits(data[1:-6], 5, 8, False))
    if version > 16 or not 2 <= len(program) <= 40 or \
            (version == 0 and len(program) not in (20, 32)):
        raise AddressError("invalid witness program")
    return version, program


def address_to_script(coin: "type[Coin]", address: str) -> bytes:
    """The output script an address of `coin` pays to; raises AddressError."""
    if not isinstance(address, str) or not address:
        raise AddressError("an address is a non-empty string")
    if coin.SEGWIT_HRP and address.lower().startswith(coin.SEGWIT_HRP + "1"):
        version, program = segwit_decode(coin.SEGWIT_HRP, address)
        return S.witness_script(version, program)
    payload = b58check_decode(address)
    if len(payload) == 21:
        if payload[0] == coin.P2PKH_VERBYTE:
            return S.p2pkh_script(payload[1:])
        if payload[0] in coin.P2SH_VERBYTES:
            return S.p2sh_script(payload[1:])
    raise AddressError(f"{address!r} is not a {coin.NAME} {coin.NET} address")


def script_to_address(coin: "type[Coin]", script: bytes) -> str | None:
    """The address of a standard output script of `coin`, or None if it has none."""
    kind, payload = S.classify(script)
    if kind == "p2pkh":
        return b58check_encode(bytes((coin.P2PKH_VERBYTE,)) + payload)
    if kind == "p2sh":
        return b58check_encode(bytes((coin.P2SH_VERBYTES[0],)) + payload)
    if coin.SEGWIT_HRP:
        if kind in ("p2wpkh", "p2wsh"):
            return segwit_encode(coin.SEGWIT_HRP, 0, payload)
        if kind == "p2tr":
            return segwit_encode(coin.SEGWIT_HRP, 1, payload)
        if kind == "witness_unknown":
            return segwit_encode(coin.SEGWIT_HRP, *payload)
    return None
