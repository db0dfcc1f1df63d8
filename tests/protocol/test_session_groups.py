"""Session groups: naming by subnet, shared and retained cost, refunds."""

from twisted.internet.task import Clock

from electrumx.protocol.costs import CostMeter
from electrumx.protocol.session_groups import REFUND_INTERVAL_SECS, SessionGroup, SessionGroups


def groups(clock=None, exempt_private=False):
    return SessionGroups(clock or Clock(), ipv4_bits=24, ipv6_bits=48, hard_limit=10000,
                         exempt_private=exempt_private)


class Member:
    """The two attributes of a session that groups use."""

    def __init__(self, clock, address, cost=0.0):
        self.remote_address = address
        self.cost = CostMeter(clock, soft=1000, hard=10000, bandwidth_unit=5000,
                              sleep_secs=2.5, initial_concurrent=10)
        self.cost.cost = cost


def test_names_by_subnet():
    g = groups()
    assert g.group_name("203.0.113.9") == "203.0.113.0/24"
    assert g.group_name("2001:db8:1:2::1") == "2001:db8:1::/48"
    assert g.group_name("abcdef.onion") is None


def test_private_and_loopback_addresses_are_ungrouped_by_default():
    g = groups(exempt_private=True)
    for address in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "::1", "fd00::1"):
        assert g.group_name(address) is None
    assert g.group_name("8.8.8.8") == "8.8.8.0/24"


def test_group_cost_is_shared_and_retained_after_leaving():
    clock = Clock()
    g = groups(clock)
    a, b = Member(clock, "198.51.100.1", 300), Member(clock, "198.51.100.200", 50)
    group = g.join(a)
    assert g.join(b) is group
    assert group.cost() == 350
    g.leave(a, group)
    clock.advance(SessionGroup.SUM_REUSE_SECS)
    assert group.sessions == {b}
    assert 340 < group.cost() < 350        # a's cost kept; both decayed for a second
    assert g.join(Member(clock, "198.51.101.1")) is not group


def test_retained_cost_is_refunded_and_empty_groups_dropped():
    clock = Clock()
    g = groups(clock)
    a = Member(clock, "198.51.100.1", 700)
    group = g.join(a)
    g.leave(a, group)
    refund = REFUND_INTERVAL_SECS * 10000 / 5000        # 600 per interval at hard=10000
    g.refund_retained()
    assert group.retained_cost == 700 - refund
    g.refund_retained()
    assert "198.51.100.0/24" not in g.groups


def test_a_large_group_is_summed_at_most_once_a_second():
    clock = Clock()
    g = groups(clock)
    members = [Member(clock, f"198.51.100.{n}", 10) for n in range(50)]
    group = next(g.join(m) for m in members[:1])
    for m in members[1:]:
        g.join(m)
    first = group.cost()
    members[0].cost.cost += 1000
    assert group.cost() == first
    clock.advance(1.0)
    assert group.cost() > first + 900


def test_extra_cost_throttles_a_cheap_session():
    clock = Clock()
    meter = Member(clock, "198.51.100.1", 5).cost
    assert meter.throttle() == (0.0, 10)
    sleep, concurrency = meter.throttle(extra_cost=5500)
    assert concurrency == 5 and 1.2 < sleep < 1.3
    assert meter.throttle(extra_cost=20000)[1] == 0


def test_a_zero_hard_limit_never_throttles():
    clock = Clock()
    meter = CostMeter(clock, soft=0, hard=0, bandwidth_unit=5000, sleep_secs=2.5,
                      initial_concurrent=10)
    meter.bump(1e9)
    assert meter.throttle(extra_cost=1e9) == (0.0, 10)
