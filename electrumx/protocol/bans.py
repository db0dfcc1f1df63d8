"""Banned client addresses and subnets, kept across restarts.

The operator bans an address or a subnet with the admin RPC; the listeners
then refuse its connections.  The list is a small JSON file in the database
directory, replaced atomically, so a ban survives a restart or a crash; only
the server's user may read it.
"""

import ipaddress
import json
import os

from electrumx.private_files import write_private_file


def parse_network(text: str):
    """An address or subnet ("203.0.113.7", "203.0.113.0/24", "2001:db8::/48") as a network."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or subnet: {text!r}") from None


def client_address(host: str):
    """The IP address of `host`, or None when it is not one (a UNIX socket).

    IPv4 clients of a dual-stack IPv6 listener arrive as ::ffff:a.b.c.d; they
    are the IPv4 address they are, for bans as for every other limit.
    """
    try:
        address = ipaddress.ip_address(host)
    except (ValueError, TypeError):
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address, networks) -> bool:
    """True if `address` (an ip_address) is inside one of `networks`."""
    return any(address in network for network in networks
               if network.version == address.version)


def address_in(host: str, networks) -> bool:
    """True if `host` is an IP address inside one of `networks`."""
    address = client_address(host)
    return address is not None and in_networks(address, networks)


class BanList:
    """The banned networks; `path` is None for a list that is not kept."""

    def __init__(self, path=None):
        self.path = path
        self.networks = set()
        if path and os.path.exists(path):
            with open(path) as f:
                self.networks = {parse_network(text) for text in json.load(f)}

    def ban(self, text: str):
        """Ban an address or subnet; returns the network banned."""
        network = parse_network(text)
        self.networks.add(network)
        self._save()
        return network

    def unban(self, text: str) -> bool:
        """Lift a ban; False if that network was not banned."""
        network = parse_network(text)
        if network not in self.networks:
            return False
        self.networks.discard(network)
        self._save()
        return True

    def is_banned(self, host: str) -> bool:
        return bool(self.networks) and address_in(host, self.networks)

    def listing(self):
        return sorted(str(n) for n in self.networks)

    def _save(self):
        if self.path:
            write_private_file(self.path, json.dumps(self.listing()).encode())
