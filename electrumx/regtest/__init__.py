"""The built-in regtest node: a deterministic chain generator and a bitcoind-compatible RPC server.

It lets the server run with no bitcoind (`twistd electrumx --demo`), and gives
tests and benchmarks a node they can steer: reveal or mine blocks, reorganise,
churn the mempool, and fail in the ways real nodes fail.

Where things are:
  chain.py        block building: genesis, coinbases, witness commitment, proof of work
  scripts.py      payee scripts and inputs of realistic size that spend them
  workload.py     the generator: WorkloadParams, size presets (ramp and mainnet shapes),
                  generate() / generate_into() (streaming)
  expected.py     the answers a correct index gives for sampled scripts
  cache.py        generated chains on disk: load_or_generate() -> GeneratedChain, whose
                  blocks are a BlockFile (read from disk when asked for)
  chainblocks.py  the node's blocks by height (the file's, then those it mined), and
                  where one block's transactions lie
  txindex.py      the node's txindex in arrays (txid -> height, start, end)
  node.py         RegtestNode: chain, UTXO set, mempool rules, and the levers
  mempool.py      the node's mempool, with a spender index
  txmaker.py      transactions the levers make (payments, replacements, double spends)
  describe.py     bitcoind's verbose JSON shapes
  rpc_methods.py  bitcoind's RPC methods;  control.py  the regtest_* control RPCs
  rpc.py          HTTP: auth, batches, statuses, failure modes
  service.py      RunningNode, start_regtest_node(), RegtestNodeService
  tap.py          `twistd electrumx-regtest` / `python -m electrumx.regtest`
  demo.py         `twistd electrumx --demo`'s node: the chain paying a published Electrum
                  wallet, the payments it keeps in the mempool, the wallet commands it prints
"""
