"""How many blocks the prefetcher asks for at once: bounded in bytes, growing slowly."""

from twisted.internet.task import Clock

from electrumx.index.prefetcher import Prefetcher


def prefetcher(budget=32_000_000):
    return Prefetcher(daemon=None, clock=Clock(), budget_bytes=budget, poll_interval=1.0)


def test_the_first_batch_is_a_small_probe():
    assert prefetcher()._batch_count(room=32_000_000, missing=5_000) == Prefetcher.PROBE_BATCH


def test_a_batch_at_most_doubles_when_early_blocks_were_small():
    """Sized from tiny early blocks alone, the next request could be for far
    more bytes than BATCH_BYTES once blocks grow; doubling bounds the surprise."""
    p = prefetcher()
    p.avg_block_size, p.last_count = 1_000, 10
    assert p._batch_count(room=32_000_000, missing=5_000) == 20


def test_a_batch_holds_about_batch_bytes_and_fits_the_room():
    p = prefetcher()
    p.avg_block_size, p.last_count = 1_000_000, 400
    assert p._batch_count(room=32_000_000, missing=5_000) == Prefetcher.BATCH_BYTES // 1_000_000
    assert p._batch_count(room=2_500_000, missing=5_000) == 2
    assert p._batch_count(room=10, missing=5_000) == 1
    assert p._batch_count(room=32_000_000, missing=3) == 3
