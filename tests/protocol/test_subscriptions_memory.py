"""Memory per script subscription, measured with tracemalloc.

Run as a script for the figures at 100,000 and 1,000,000 subscriptions:

    PYTHONPATH=. python -m tests.protocol.test_subscriptions_memory

The test runs a smaller count and checks the figure stays compact.
"""

import tracemalloc
from hashlib import sha256

from electrumx.index.read_api import status_text
from electrumx.protocol.subscriptions import SubscriptionRegistry
from tests.protocol.test_methods_support import FakeSession

SESSIONS = 1000


class StubReader:
    """Every script has one confirmed transaction; the tip never moves."""

    height = 100
    _history = [(bytes(32), 1)]

    def confirmed_status_hasher(self, hashX, limit):
        return len(self._history), sha256(status_text(self._history))

    def mempool_history(self, hashX):
        return []

    def header(self, height):
        return bytes(80)


def bytes_per_subscription(count: int, shared_by: int = 1) -> float:
    """Traced bytes per subscription for `count` subscriptions over SESSIONS sessions,
    each script followed by `shared_by` sessions."""
    sessions = [FakeSession(session_id=n, remote_address=f"10.{n // 256}.{n % 256}.1")
                for n in range(SESSIONS)]
    registry = SubscriptionRegistry(StubReader(), max_send=1_000_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(count):
        script = (n // shared_by).to_bytes(32, "big").hex()
        registry.subscribe(sessions[n % SESSIONS], script)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert registry.subscription_count == count
    return used / count


def test_subscriptions_are_compact():
    assert bytes_per_subscription(20_000) < 260
    assert bytes_per_subscription(20_000, shared_by=10) < 220


if __name__ == "__main__":
    for count in (100_000, 1_000_000):
        for shared_by in (1, 10):
            print(f"{count:,d} subscriptions over {SESSIONS:,d} sessions, each script shared "
                  f"by {shared_by}: {bytes_per_subscription(count, shared_by):.0f} bytes each")
