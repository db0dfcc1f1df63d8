"""Memory per subscription (script hash, script, outpoint), measured with tracemalloc.

Run as a script for the figures at 100,000 and 1,000,000 subscriptions:

    PYTHONPATH=. python -m tests.protocol.test_subscriptions_memory

The test runs a smaller count and checks the figures stay compact.  For
scripts it measures memory per count toward the limits (a long script counts
once per SCRIPT_BYTES_PER_SUB bytes), which is what MAX_SUBS and the per-session
and per-group limits bound: the worst case is scripts of SCRIPT_BYTES_PER_SUB
bytes, each counted once.
"""

import tempfile
import tracemalloc
from hashlib import sha256

from zope.interface.verify import verifyObject

from electrumx.chain.hashes import HASHX_LEN
from electrumx.chain.outpoint import OutpointStatus
from electrumx.chain.status import status_text
from electrumx.index.read_api import ChainReader
from electrumx.interfaces import IChainReader
from electrumx.protocol.subscriptions import SCRIPT_BYTES_PER_SUB, SubscriptionRegistry
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

    def outpoint_status(self, txid, out_idx):
        """Every outpoint is funded at height 1, paying the script whose hashX its txid
        starts with (the hint `_subscribe_outpoint` gives)."""
        return OutpointStatus(1, txid[:HASHX_LEN])


def _script_hash(registry, session, key: int):
    registry.subscribe(session, key.to_bytes(32, "big").hex())


def _script(length: int):
    """A subscriber to scripts of `length` bytes, named by themselves (protocol 1.7)."""
    def subscribe(registry, session, key: int):
        script = key.to_bytes(length, "big")
        registry.subscribe_script(session, sha256(script).digest()[:HASHX_LEN], script)
    return subscribe


def _outpoint(per_script: int):
    """A subscriber to outpoints, `per_script` of them filed under each script."""
    def subscribe(registry, session, key: int):
        txid = (key // per_script).to_bytes(HASHX_LEN, "big") + key.to_bytes(21, "big")
        registry.subscribe_outpoint(session, txid, 0, txid[:HASHX_LEN])
    return subscribe


KINDS = {
    "script hashes": _script_hash,
    "P2PKH scripts (25 bytes)": _script(25),
    f"{SCRIPT_BYTES_PER_SUB}-byte scripts (the worst)": _script(SCRIPT_BYTES_PER_SUB),
    "10,000-byte scripts": _script(10_000),
    "outpoints, one per script": _outpoint(1),
    "outpoints, ten per script": _outpoint(10),
}


def bytes_per_subscription(directory, count: int, shared_by: int = 1,
                           kind="script hashes") -> float:
    """Traced bytes per count toward the limits, for `count` subscriptions of a kind
    (see KINDS) over SESSIONS sessions, each followed by `shared_by` sessions; the
    index is kept in `directory`."""
    node = Node(directory)
    try:
        node.add_blocks(build_chain().blocks)
        reader = OneTxEachReader(node.db, node.mempool, node.daemon)
        verifyObject(IChainReader, reader)
        return _measured(reader, count, shared_by, KINDS[kind])
    finally:
        node.close()


def _measured(reader, count, shared_by, subscribe):
    sessions = [FakeSession(session_id=n, remote_address=f"10.{n // 256}.{n % 256}.1",
                            version=(1, 7))
                for n in range(SESSIONS)]
    registry = SubscriptionRegistry(reader, max_send=1_000_000)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(count):
        subscribe(registry, sessions[n % SESSIONS], n // shared_by)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert registry.subscription_count >= count
    return used / registry.subscription_count


def test_subscriptions_are_compact(tmp_path):
    assert bytes_per_subscription(tmp_path / "each", 20_000) < 260
    assert bytes_per_subscription(tmp_path / "shared", 20_000, shared_by=10) < 220


def test_script_subscriptions_are_bounded_per_count(tmp_path):
    """Scripts named by themselves: what a count toward the limits pins stays bounded
    whatever the scripts' length (a 10,000-byte script counts 79 times)."""
    for n, kind in enumerate(("P2PKH scripts (25 bytes)",
                              f"{SCRIPT_BYTES_PER_SUB}-byte scripts (the worst)",
                              "10,000-byte scripts")):
        count = 200 if kind.startswith("10,000") else 20_000
        assert bytes_per_subscription(tmp_path / str(n), count, kind=kind) < 330, kind


def test_outpoint_subscriptions_are_compact(tmp_path):
    assert bytes_per_subscription(tmp_path / "each", 20_000,
                                  kind="outpoints, one per script") < 400
    assert bytes_per_subscription(tmp_path / "shared", 20_000, shared_by=10,
                                  kind="outpoints, one per script") < 250


if __name__ == "__main__":
    for kind in KINDS:
        for count in (100_000, 1_000_000):
            if kind.startswith("10,000"):
                count //= 100
            for shared_by in (1, 10):
                with tempfile.TemporaryDirectory() as directory:
                    each = bytes_per_subscription(directory, count, shared_by, kind)
                print(f"{kind}: {count:,d} subscriptions over {SESSIONS:,d} sessions, each "
                      f"shared by {shared_by}: {each:.0f} bytes per count")
