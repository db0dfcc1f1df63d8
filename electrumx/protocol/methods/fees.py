"""Fee estimates: `blockchain.estimatefee` with a per-tip cache, and `blockchain.relayfee`.

bitcoind's estimates only change when a block arrives, so an answer is kept
per (target bucket, mode) until the tip changes; the protocol asks that no
stale estimate be served across a new block.  Concurrent requests for the
same key share one node call.
"""

from twisted.internet.defer import Deferred, succeed

from electrumx.protocol import costs
from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.methods import params
from electrumx.protocol.methods.daemon import ask_daemon

ESTIMATEFEE_MODES = (None, "CONSERVATIVE", "ECONOMICAL")
"""The modes bitcoind knows; a closed list, so clients cannot force cache misses."""


class _Estimate:
    """One cached estimate: the tip it is for, and its value or its waiters."""

    __slots__ = ("tip", "value", "waiters")

    def __init__(self, tip):
        self.tip = tip
        self.value = None
        self.waiters = []       # None once the value is known

    def wait(self) -> Deferred:
        if self.waiters is None:
            return succeed(self.value)
        waiter: Deferred = Deferred()
        self.waiters.append(waiter)
        return waiter


class FeeEstimates:
    """The node's fee estimates, asked once per key and tip."""

    def __init__(self, reader):
        self.reader = reader
        self._estimates = {}

    def lookup(self, number: int, mode):
        """(Deferred of the estimate, whether this lookup asked the node)."""
        key = (number, mode)
        tip = self.reader.tip
        estimate = self._estimates.get(key)
        if estimate is not None and estimate.tip == tip:
            return estimate.wait(), False
        estimate = self._estimates[key] = _Estimate(tip)
        waiter = estimate.wait()
        request = self.reader.estimatefee(number, mode)
        request.addCallbacks(self._settled, self._failed, (key, estimate), None,
                             (key, estimate), None)
        return waiter, True

    def _settled(self, value, key, estimate):
        waiters, estimate.waiters = estimate.waiters, None
        estimate.value = value
        for waiter in waiters:
            waiter.callback(value)

    def _failed(self, failure, key, estimate):
        # Forget it, so the next request asks again.
        if self._estimates.get(key) is estimate:
            del self._estimates[key]
        waiters, estimate.waiters = estimate.waiters, None
        for waiter in waiters:
            waiter.errback(failure)


class FeeMethods:
    """Handlers of `blockchain.estimatefee` and `blockchain.relayfee`."""

    def __init__(self, reader):
        self.reader = reader
        self.estimates = FeeEstimates(reader)

    async def _estimate(self, session, number, mode):
        number = params.non_negative_int(number, "number")
        mode = mode.upper() if isinstance(mode, str) else mode
        if mode not in ESTIMATEFEE_MODES:
            raise RPCError(BAD_REQUEST, f"unknown estimatefee mode: {params.shown(mode)}")
        session.bump_cost(costs.ESTIMATEFEE)
        number = self.reader.fee_estimate_target(number)
        result, asked_node = self.estimates.lookup(number, mode)
        if asked_node:
            session.bump_cost(costs.ESTIMATEFEE_NODE)
        return await ask_daemon(result)

    def estimatefee(self, session, number):
        """Protocol 1.4 to 1.5: the fee rate in coin/kvB to confirm within `number` blocks."""
        return self._estimate(session, number, None)

    def estimatefee_with_mode(self, session, number, mode=None):
        """Protocol 1.6: as estimatefee, with bitcoind's CONSERVATIVE or ECONOMICAL mode."""
        return self._estimate(session, number, mode)

    async def relayfee(self, session):
        """Protocol 1.4 to 1.5 only: the node's minimum relay fee in coin/kvB."""
        session.bump_cost(costs.RELAYFEE)
        return await ask_daemon(self.reader.relayfee())
