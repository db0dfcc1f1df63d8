"""Session groups: sessions from one subnet share the cost they run up.

One client can open many connections; judged one by one each stays under the
cost limits.  So sessions from one IPv4 /24 (IPv6 /48 by default) form a
group, and each session is throttled by the cost of its whole group
(REFERENCE §2.2: `extra_cost` is the group's cost beyond the session's own).
A group keeps the cost of its sessions after they disconnect, refunded
slowly, so reconnecting does not wipe the slate.

Private and loopback addresses are not grouped: they are Tor clients
arriving through the local proxy, or the operator's own tools, and putting
them all in one group would make every Tor user pay for all the others.
"""

import ipaddress
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # sessions join groups: named here for the types only
    from electrumx.protocol.session import SessionBase

REFUND_INTERVAL_SECS = 300.0
"""How often retained cost is partly refunded, as in ElectrumX."""


class SessionGroup:
    """The sessions of one subnet, and the cost left behind by those that closed."""

    __slots__ = ("name", "sessions", "retained_cost", "_clock", "_summed", "_summed_at")

    SUM_REUSE_SECS = 1.0
    """A large group's members are summed at most this often, not on every request."""

    def __init__(self, name: str, clock):
        self.name = name
        self.sessions: set["SessionBase"] = set()
        self.retained_cost = 0.0
        self._clock = clock
        self._summed = 0.0
        self._summed_at = None

    def cost(self) -> float:
        """Retained cost plus the current cost of every member."""
        now = self._clock.seconds()
        if self._summed_at is None or now - self._summed_at >= self.SUM_REUSE_SECS:
            self._summed = sum(s.cost.current() for s in self.sessions)
            self._summed_at = now
        return self.retained_cost + self._summed


class SessionGroups:
    """Assigns sessions to subnet groups and keeps the groups' costs."""

    def __init__(self, clock, *, ipv4_bits: int, ipv6_bits: int, hard_limit: float,
                 exempt_private: bool = True):
        self.clock = clock
        self.bits = {4: ipv4_bits, 6: ipv6_bits}
        self.exempt_private = exempt_private
        self.refund = REFUND_INTERVAL_SECS * hard_limit / 5000
        self.groups: dict[str, SessionGroup] = {}

    def group_name(self, host: str):
        """The group of a remote address ("203.0.113.0/24"), or None if ungrouped."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        if self.exempt_private and (address.is_private or address.is_loopback):
            return None
        network = ipaddress.ip_network(f"{address}/{self.bits[address.version]}", strict=False)
        return str(network)

    def join(self, session):
        """Put a new session in its group; returns the group or None."""
        name = self.group_name(session.remote_address)
        if name is None:
            return None
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = SessionGroup(name, self.clock)
        group.sessions.add(session)
        return group

    def leave(self, session, group):
        """A session closed: its group keeps the cost it ran up."""
        if group is None:
            return
        group.sessions.discard(session)
        group.retained_cost += session.cost.current()

    def refund_retained(self):
        """Called every REFUND_INTERVAL_SECS: forgive some retained cost, drop empty groups."""
        for name, group in list(self.groups.items()):
            group.retained_cost = max(0.0, group.retained_cost - self.refund)
            if not group.sessions and not group.retained_cost:
                del self.groups[name]
