"""The per-session cost model of a public server (REFERENCE §2.2).

Every request, error and byte adds to a session's cost; cost decays with
time.  Between the soft and the hard limit a session's requests are slowed
(a sleep before each) and fewer run at once; at the hard limit the session
is disconnected with "excessive resource usage".  A hard limit of 0 turns
all of this off (COST_HARD_LIMIT=0, for private servers).
"""

import math

INITIAL_COST = 5.0
ERROR_COST = 100.0


class CostMeter:
    """One session's cost, decaying on the clock passed in."""

    def __init__(self, clock, *, soft: float, hard: float, bandwidth_unit: int,
                 sleep_secs: float, initial_concurrent: int):
        self.clock = clock
        self.soft = soft
        self.hard = hard
        self.bytes_per_unit = bandwidth_unit
        self.sleep_secs = sleep_secs
        self.initial_concurrent = initial_concurrent
        self.decay_per_sec = hard / 10000 if hard else 0.0
        self.cost = INITIAL_COST
        self._updated = clock.seconds()

    def _decay(self):
        now = self.clock.seconds()
        self.cost = max(0.0, self.cost - (now - self._updated) * self.decay_per_sec)
        self._updated = now

    def current(self) -> float:
        """The cost now, after decay."""
        self._decay()
        return self.cost

    def bump(self, amount: float):
        self._decay()
        self.cost += amount

    def bump_bytes(self, count: int):
        self.bump(count / self.bytes_per_unit)

    def throttle(self, extra_cost: float = 0.0):
        """(seconds to sleep before the next request, requests allowed at once).

        `extra_cost` is what the session's group ran up beyond this session.
        A concurrency of 0 means the session is over the hard limit.
        """
        self._decay()
        cost = self.cost + extra_cost
        if not self.hard or cost <= self.soft:
            return 0.0, self.initial_concurrent
        fraction = min(1.0, (cost - self.soft) / (self.hard - self.soft))
        concurrency = math.ceil((1.0 - fraction) * self.initial_concurrent)
        return fraction * self.sleep_secs, concurrency
