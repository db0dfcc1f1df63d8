"""Bytes of the chain: hashes, scripts, addresses, transactions, blocks, merkle trees.

Everything here is a pure function or a small value class; nothing touches
the network, the reactor or the database.
"""
