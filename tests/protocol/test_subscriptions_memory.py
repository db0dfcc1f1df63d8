"""Memory per script subscription, measured with tracemalloc.

Run as a script for the figures at 100,000 and 1,000,000 subscriptions:

    PYTHONPATH=. python -m tests.protocol.test_subscriptions_memory

The test runs a smaller count and checks the figure stays compact.
"""

import tempfile
import tracemalloc
from hashlib import sha256

from zope.interface.verify import verifyObject

from electrumx.chain.status import status_text
from electrumx.index.read_api import ChainReader
from electrumx.interfaces import IChainReader
from electrumx.protocol.subscriptions import SubscriptionRegistry
from tests.fixtures.blocks import build_chain
from tests.protocol.test_methods_support import FakeSession, Node

SESSIONS = 1000


class OneTxEachReader(ChainReader):
    """The real reader over a small real index, where every script has one confirmed
    transaction: the registry's memory per subscription, without indexing a chain of
    a million scripts (whose histories the reader would then cache)."""

    ONE_TX = [(bytes(32), 1)]

    def confirmed_status_hasher(self, hashX, limit):
        return len(self.ONE_TX), sha256(status_text(self.ONE_TX))


def bytes_per_subscription(directory, count: int, shared_by: int = 1) -> float:
    """Traced bytes per subscription for `count` subscriptions over SESSIONS sessions,
    each script followed by `shared_by` sessions; the index is kept in `directory`."""
    node = Node(directory)
    try:
        node.add_blocks(build_chain().blocks)
        reader = OneTxEachReader(node.db, node.mempool, node.daemon)
        verifyObject(IChainReader, reader)
        return _measured(reader, count, shared_by)
    finally:
        node.close()


def _measured(reader, count, shared_by):
    sessions = [FakeSession(session_id=n, remote_address=f"10.{n // 256}.{n % 256}.1")
                for n in range(SESSIONS)]
    registry = SubscriptionRegistry(reader, max_send=1_000_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(count):
        script = (n // shared_by).to_bytes(32, "big").hex()
        registry.subscribe(sessions[n % SESSIONS], script)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert registry.subscription_count == count
    return used / count


def test_subscriptions_are_compact(tmp_path):
    assert bytes_per_subscription(tmp_path / "each", 20_000) < 260
    assert bytes_per_subscription(tmp_path / "shared", 20_000, shared_by=10) < 220


if __name__ == "__main__":
    for count in (100_000, 1_000_000):
        for shared_by in (1, 10):
            with tempfile.TemporaryDirectory() as directory:
                each = bytes_per_subscription(directory, count, shared_by)
            print(f"{count:,d} subscriptions over {SESSIONS:,d} sessions, each script shared "
                  f"by {shared_by}: {each:.0f} bytes each")
