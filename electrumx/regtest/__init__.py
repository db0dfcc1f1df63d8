"""The built-in regtest node: a deterministic chain generator and a bitcoind-compatible RPC server.

It lets the server run with no bitcoind (`twistd electrumx --demo`), and gives
tests and benchmarks a node they can steer: reveal or mine blocks, reorganise,
churn the mempool, and fail in the ways real nodes fail.
"""
