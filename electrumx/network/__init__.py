"""The peer network: finding, checking and listing other Electrum servers.

    peer.py       a peer record, host sanity, and the `hosts` of server.features
    buckets.py    which peers server.peers.subscribe shows (a cap per /16 and /56)
    client.py     a bounded JSON-RPC client for talking to another server
    verifier.py   one check of one peer: version, features, a header, its peers
    blacklist.py  hosts never to use, from BLACKLIST_URL
    manager.py    the PeerManager service: seeds, add_peer, re-checks, announcing
    tor.py        onion names and Tor's SOCKS proxy, for onion peers
    onion.py      our listeners as a Tor onion service (TOR_CONTROL)
    irc.py        the IRC announcer (IRC=yes)
"""
