"""The bookkeeping of one JSON-RPC batch: its items under way, and its reply within MAX_SEND.

The session runs a batch's items one after another through the same
admission as single requests, with at most its concurrency of them under
way (`UnderWay`), and adds each item's encoded reply to a `BatchReply` as it
comes.  Once the replies pass the size limit the batch stops: its remaining
items never run, and what was built is dropped.
"""

from twisted.internet import defer


class BatchReply:
    """A batch's encoded replies, kept in request order, up to `limit` bytes in all."""

    def __init__(self, count: int, limit: int):
        self._parts: list[bytes | None] = [None] * count
        self._size = 2                  # the brackets
        self._limit = limit
        self.too_large = False

    def add(self, index: int, data: bytes):
        """The encoded reply of item `index`.

        It is kept as a copy of exactly its size: orjson's output holds on to
        the buffer it wrote into, up to ten times its length for long strings.
        """
        if self.too_large:
            return
        self._size += len(data) + 1     # and its comma
        if self._size > self._limit:
            self.too_large = True
            self._parts = []
            return
        self._parts[index] = bytes(memoryview(data))

    def encoded(self):
        """The reply message, or None when every item was a notification."""
        parts = [part for part in self._parts if part is not None]
        return b"[" + b",".join(parts) + b"]" if parts else None


class UnderWay:
    """The Deferreds of a batch's items still running, and waits for one of them to end."""

    def __init__(self):
        self._running = set()
        self._ended = None

    def add(self, d: defer.Deferred):
        if not d.called:
            self._running.add(d)
            d.addBoth(self._end, d)

    def _end(self, result, d):
        self._running.discard(d)
        ended, self._ended = self._ended, None
        if ended is not None:
            ended.callback(None)
        return result

    async def room_for_one_more(self, limit: int):
        """Wait until fewer than `limit` items are running (at least one may always run:
        past the hard limit, its own admission refuses it)."""
        while len(self._running) >= max(1, limit):
            await self._one_ended()

    async def all_ended(self):
        while self._running:
            await self._one_ended()

    def _one_ended(self):
        self._ended = defer.Deferred()
        return self._ended
