"""Least-recently-used caches: bounded by their number of entries, or by their bytes."""

from collections import OrderedDict


class LRU(OrderedDict):
    """A small least-recently-used cache."""

    def __init__(self, size):
        super().__init__()
        self.size = size
        self.hits = self.misses = 0

    def lookup(self, key):
        try:
            value = self[key]
        except KeyError:
            self.misses += 1
            return None
        self.hits += 1
        self.move_to_end(key)
        return value

    def store(self, key, value):
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)


def _second_len(value) -> int:
    return len(value[1])


class BytesLRU(LRU):
    """An LRU bounded by the total bytes of its values, not their number.

    `size_of(value)` is a value's bytes; by default `len(value[1])`, for
    (count, bytes) values.  A value larger than the whole bound is not kept.
    """

    def __init__(self, max_bytes, size_of=_second_len):
        super().__init__(size=None)
        self.max_bytes = max_bytes
        self.size_of = size_of
        self.bytes = 0

    def store(self, key, value):
        self.forget(key)
        size = self.size_of(value)
        if size > self.max_bytes:
            return
        self[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes:
            _key, dropped = self.popitem(last=False)
            self.bytes -= self.size_of(dropped)

    def forget(self, key):
        old = self.pop(key, None)
        if old is not None:
            self.bytes -= self.size_of(old)
