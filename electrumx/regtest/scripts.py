"""Output scripts for generated payees, and inputs that spend them with realistic sizes.

Scripts are derived from a seed and an index, so no key material exists:
signatures are random bytes of the sizes real ones have (72-byte DER-ish
ECDSA signatures, 33-byte compressed public keys, 64-byte Schnorr
signatures for taproot key-path spends).  Nothing on our side verifies them.
"""

import hashlib

from electrumx.chain.script import (classify, p2pk_script, p2pkh_script, p2sh_script,
                                    witness_script)
from electrumx.chain.tx import TxInput

# The mix of payee kinds, by frequency: one entry per share.
PAYEE_KINDS = ("p2pkh", "p2wpkh", "p2wpkh", "p2tr", "p2sh", "p2wsh", "p2pk")
WITNESS_KINDS = frozenset(("p2wpkh", "p2wsh", "p2tr"))
# Opting in to replacement (BIP125), as most wallets do today.
RBF_SEQUENCE = 0xFFFFFFFD


def script_of(index: int, seed: int):
    """(kind, script) of the index-th payee of a workload."""
    kind = PAYEE_KINDS[index % len(PAYEE_KINDS)]
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    if kind == "p2pkh":
        return kind, p2pkh_script(digest[:20])
    if kind == "p2sh":
        return kind, p2sh_script(digest[:20])
    if kind == "p2wpkh":
        return kind, witness_script(0, digest[:20])
    if kind == "p2wsh":
        return kind, witness_script(0, digest)
    if kind == "p2tr":
        return kind, witness_script(1, digest)
    return kind, p2pk_script(b"\x02" + digest)


def kind_of(script: bytes) -> str:
    """The payee kind of any output script (its standard type, or "nonstandard")."""
    return classify(script)[0]


def spending_input(prev_hash: bytes, prev_idx: int, kind: str, rng,
                   sequence: int = RBF_SEQUENCE) -> TxInput:
    """An input spending an output of `kind`, with a script or witness of realistic size."""
    randbytes = rng.randbytes
    if kind == "p2wpkh":
        witness = [randbytes(72), b"\x02" + randbytes(32)]
    elif kind == "p2tr":
        witness = [randbytes(64)]
    elif kind == "p2wsh":
        witness = [b"", randbytes(72), randbytes(71), randbytes(71)]
    else:
        return TxInput(prev_hash, prev_idx, _script_sig(kind, randbytes), sequence, ())
    return TxInput(prev_hash, prev_idx, b"", sequence, witness)


def _script_sig(kind, randbytes):
    if kind == "p2pkh":
        return b"\x48" + randbytes(72) + b"\x21\x02" + randbytes(32)
    if kind == "p2pk":
        return b"\x48" + randbytes(72)
    # P2SH (a 2-of-2 multisig redeem) and anything nonstandard.
    return b"\x00\x48" + randbytes(72) + b"\x47" + randbytes(71)
