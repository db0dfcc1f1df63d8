"""bitcoind's JSON-RPC error codes (its src/rpc/protocol.h), as the built-in node answers them.

The node imitates bitcoind's dialect of JSON-RPC, so its codes carry bitcoind's
names; the Electrum server's own codes (`electrumx.protocol.errors`) follow
ElectrumX instead, and the node client's view of these is
`electrumx.index.node_replies`.
"""

RPC_MISC_ERROR = -1
"""Also bitcoind's answer to a call with the wrong arguments (with the usage text)."""
RPC_TYPE_ERROR = -3
"""A parameter of the wrong JSON type."""
RPC_INVALID_ADDRESS_OR_KEY = -5
"""No such block or transaction (bitcoind's name predates that use)."""
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22
"""A raw transaction or block that does not parse."""
RPC_VERIFY_ERROR = -25
"""A transaction or package that fails a general check (missing inputs, fee cap)."""
RPC_VERIFY_REJECTED = -26
"""A transaction the mempool's rules refuse."""
RPC_VERIFY_ALREADY_IN_UTXO_SET = -27
RPC_IN_WARMUP = -28
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INTERNAL_ERROR = -32603
RPC_PARSE_ERROR = -32700
