"""Output scripts: the standard templates, and which outputs can never be spent."""

from typing import Any

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_PUSHDATA2 = 0x4D
OP_PUSHDATA4 = 0x4E
OP_1 = 0x51
OP_RETURN = 0x6A
OP_DUP = 0x76
OP_EQUAL = 0x87
OP_EQUALVERIFY = 0x88
OP_HASH160 = 0xA9
OP_CHECKSIG = 0xAC


def p2pkh_script(hash160: bytes) -> bytes:
    return bytes((OP_DUP, OP_HASH160, 20)) + hash160 + bytes((OP_EQUALVERIFY, OP_CHECKSIG))


def p2sh_script(hash160: bytes) -> bytes:
    return bytes((OP_HASH160, 20)) + hash160 + bytes((OP_EQUAL,))


def p2pk_script(pubkey: bytes) -> bytes:
    return bytes((len(pubkey),)) + pubkey + bytes((OP_CHECKSIG,))


def witness_script(version: int, program: bytes) -> bytes:
    """A segwit output: version 0 (P2WPKH, P2WSH) or 1 (P2TR), then the program."""
    if not 0 <= version <= 16 or not 2 <= len(program) <= 40:
        raise ValueError("invalid witness version or program length")
    return bytes((OP_1 - 1 + version if version else OP_0, len(program))) + program


def null_data_script(data: bytes) -> bytes:
    """An OP_RETURN output carrying up to 75 bytes."""
    if len(data) > 75:
        raise ValueError("null data of more than 75 bytes needs PUSHDATA")
    return bytes((OP_RETURN, len(data))) + data


def classify(script: bytes) -> tuple[str, Any]:
    """Return (kind, payload) of a standard output script, or ("nonstandard", None).

    Kinds: p2pkh, p2sh, p2pk, p2wpkh, p2wsh, p2tr, witness_unknown, nulldata.
    """
    n = len(script)
    if n == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return "p2pkh", script[3:23]
    if n == 23 and script[:2] == b"\xa9\x14" and script[22] == OP_EQUAL:
        return "p2sh", script[2:22]
    if n and script[0] == OP_RETURN:
        return "nulldata", script[1:]
    if n in (35, 67) and script[0] == n - 2 and script[-1] == OP_CHECKSIG:
        return "p2pk", script[1:-1]
    if 4 <= n <= 42 and script[1] == n - 2 and (script[0] == OP_0 or OP_1 <= script[0] <= 0x60):
        version = 0 if script[0] == OP_0 else script[0] - OP_1 + 1
        program = script[2:]
        if version == 0 and n == 22:
            return "p2wpkh", program
        if version == 0 and n == 34:
            return "p2wsh", program
        if version == 1 and n == 34:
            return "p2tr", program
        if version:
            return "witness_unknown", (version, program)
    return "nonstandard", None


def is_unspendable(script: bytes) -> bool:
    """True for outputs that can never be spent, which the index leaves out.

    That is an OP_RETURN script (provably unspendable by consensus) and an
    output over the consensus script size limit of 10,000 bytes.
    """
    return (script[:1] == b"\x6a") or len(script) > 10_000
