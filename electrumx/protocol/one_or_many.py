"""Dicts whose values are one member or a set of them: the subscription registry's maps.

Most scripts and outpoints are followed by one session, and most scripts have at
most one subscribed outpoint filed under them.  A set per key (216 bytes when
small) would be most of a subscription's memory, so a lone member is stored as
itself and a set is made only for the second.  Members are never sets themselves
(they are sessions or bytes).
"""


def members(value) -> tuple:
    """The members stored in one of these dicts' values."""
    return tuple(value) if isinstance(value, set) else (value,)


def add(mapping: dict, key, member):
    """Make `member` one of `key`'s members."""
    present = mapping.get(key)
    if present is None:
        mapping[key] = member
    elif isinstance(present, set):
        present.add(member)
    elif present != member:
        mapping[key] = {present, member}


def discard(mapping: dict, key, member) -> bool:
    """Take `member` from `key`'s members; True when none is left (the key is gone)."""
    present = mapping.get(key)
    if isinstance(present, set):
        present.discard(member)
        if len(present) == 1:
            mapping[key] = next(iter(present))
        return False
    if present is not None and present == member:
        del mapping[key]
        return True
    return present is None
