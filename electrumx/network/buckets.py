"""Which verified peers server.peers.subscribe shows.

A few machines in one network must not fill a wallet's list, so peers are
grouped by the network they are in (IPv4 /16, IPv6 /56) and only a few of
each group are shown, picked at random so each group's members take turns.
"""

import ipaddress

PER_BUCKET = 2


def bucket_of(address: str) -> str:
    """The group of an address: "a.b.0.0/16", an IPv6 /56, or the name itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 16 if ip.version == 4 else 56
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def pick_per_bucket(peers, rng, per_bucket: int = PER_BUCKET) -> list:
    """At most `per_bucket` peers of each bucket (by `ip_addr`, else host), picked with `rng`."""
    buckets = {}
    for peer in peers:
        buckets.setdefault(bucket_of(peer.ip_addr or peer.host), []).append(peer)
    chosen = []
    for members in buckets.values():
        if len(members) > per_bucket:
            members = rng.sample(members, per_bucket)
        chosen.extend(members)
    return chosen
