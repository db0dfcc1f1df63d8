"""The seams between the server's parts: what each side may ask of the other.

    node(s) ──INodeClient──> index/ ──IIndexListener──> ChainReader ──IIndexListener──> registry
                                                             │
                                   protocol/ ──IChainReader──┘
                                   protocol/ ──IPeerDirectory──> network/

A part names the interface of what it talks to, never the class behind it,
so a test can hand it a fake that passes `zope.interface.verify.verifyObject`
and a new feature (a ZMQ block source, a status page) knows what it may call.
The read API relays a few node calls for clients; it names only those
(`INodeRelay`), which the full node client extends.  The one exception that
crosses a seam, the node's error, is defined here too.
"""

from zope.interface import Attribute, Interface


class DaemonError(Exception):
    """The node answered a JSON-RPC error (or, to `call_once`, could not be reached:
    code UNAVAILABLE in `electrumx.index.daemon`)."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return f"{self.message} (code {self.code})"


class INodeRelay(Interface):
    """The node calls the read API makes on a client's behalf (a Deferred each, failing
    with `DaemonError` for an error the node answers)."""

    def raw_transaction(hex_hash, verbose=False, block_hash=None):
        """One transaction as hex, or the node's verbose dict; with `block_hash` (display
        hex) the node looks in that block, which needs no txindex."""

    def decode_transaction(raw_hex):
        """The node's `decoderawtransaction` dict of a raw hex transaction."""

    def raw_blocks(hex_hashes):
        """Raw blocks (bytes) for display-hex hashes."""

    tx_lookup = Attribute("How the node finds confirmed transactions (a TxLookup), or "
                          "None before `probe_tx_lookup`")

    def probe_tx_lookup():
        """Ask the node whether it has a txindex and takes getrawtransaction's block
        hash; the TxLookup, kept as `tx_lookup`."""

    def broadcast(raw_hex):
        """Send a transaction; its txid."""

    def submit_package(raw_txs):
        """Submit a package of transactions (bitcoind's `submitpackage`); its result dict."""

    def estimatefee(blocks, mode=None):
        """The fee estimate in coin/kvB, or -1 when the node has none."""

    def relayfee():
        """The node's minimum relay fee in coin/kvB."""

    def mempool_info():
        """The node's `getmempoolinfo` dict."""

    def network_info():
        """The node's `getnetworkinfo` dict."""

    def test_mempool_accept(raw_txs):
        """The node's `testmempoolaccept` result list for raw hex transactions."""


class INodeClient(INodeRelay):
    """A JSON-RPC client of the coin's node(s): what the index asks of it, and the
    calls it relays for clients.

    Every call returns a Deferred.  A node that is down, warming up or
    answering garbage is waited for (retried, failing over between URLs);
    an error the node answers fails the Deferred with `DaemonError`.
    """

    current_url = Attribute("The URL of the node now asked (None if none is configured).")
    request_count = Attribute("HTTP requests posted to nodes so far (a batch counts once).")
    failure_count = Attribute("Requests that found a node unavailable.")

    def set_urls(urls):
        """Replace the node list (the admin `daemon_url` command, the demo node)."""

    def failover():
        """Move to the next node; False if there is only one."""

    def close():
        """Give up every request under way and drop pooled connections (a Deferred)."""

    def call(method, *params):
        """`method(*params)`'s result."""

    def call_once(method, *params):
        """One attempt on the current node, no retry: for long-polls."""

    def batch(method, params_list, errors_ok=False, fresh=False):
        """The results of one batched request, in order."""

    def height():
        """The node's tip height."""

    def block_hash(height):
        """The display-hex hash of the node's block at `height`."""

    def block_hashes(first_height, count):
        """Display-hex hashes of `count` blocks from `first_height`."""

    def best_block_hash():
        """The display-hex hash of the node's tip."""


    def mempool_hashes():
        """The display-hex txids in the node's mempool."""

    def raw_transactions(hex_hashes):
        """Raw transactions (bytes) for display-hex txids; None for each one the node lacks."""

    def blockchain_info():
        """The node's `getblockchaininfo` dict."""

    def check_network(coin):
        """Fail with a DaemonError if the node serves another network than `coin`."""



class IIndexListener(Interface):
    """Told of every change to the index, after it is committed."""

    def on_index_change(touched, height):
        """The index is now at `height`; `touched` is the set of hashXs whose history
        or mempool entries changed (a reorg touches those of the undone blocks too)."""


class IChainReader(Interface):
    """Everything the protocol layer reads: the confirmed index, the mempool, and the
    node calls made on a client's behalf.

    Reads of the index are synchronous and run between two index writes, so
    one call never mixes two chains; node calls return Deferreds and fail
    with `DaemonError`.
    """

    height = Attribute("The height of the indexed tip.")
    tip = Attribute("The indexed tip's hash (internal byte order).")
    header_len = Attribute("The length in bytes of one block header of this coin.")

    def add_listener(listener):
        """Tell `listener` (an IIndexListener) of each index change, after this reader
        has forgotten the answers the change made stale."""

    def header(height):
        """The raw header at `height`."""

    def headers(start, count):
        """Up to `count` raw headers from `start`, concatenated."""

    def header_branch(height, cp_height):
        """(branch, root) proving header `height` under checkpoint `cp_height`."""

    def confirmed_history(hashX, limit=None):
        """[(txid, height)] of a script's confirmed transactions, in chain order."""

    def confirmed_history_json(hashX, limit, from_height=0, to_height=None):
        """(count, JSON) of the confirmed history as `get_history` sends it: entries joined
        by commas, without brackets.  Only entries with from_height <= height <
        to_height (None: no upper bound) are read; at most `limit` of them (a count
        of `limit` means: too long for one reply)."""

    def confirmed_status_hasher(hashX, limit):
        """A sha256 object fed with the confirmed part of a script's status text."""

    def mempool_history(hashX):
        """[(txid, height, fee)] of a script's mempool transactions, in protocol order."""

    def status(hashX):
        """A script's Electrum status (32 bytes), or None without history."""

    def balance(hashX):
        """(confirmed, unconfirmed) balance in the coin's smallest unit."""

    def utxos(hashX):
        """[(txid, tx_pos, height, value)] of a script's unspent outputs."""

    def outpoint_status(txid, out_idx):
        """The `chain.outpoint.OutpointStatus` of output `out_idx` of `txid` (internal
        byte order), from the index and the mempool: no node call, no node index."""

    def recent_mempool(count):
        """[(txid, fee, vsize)] of the last `count` transactions to enter the mempool,
        newest first."""

    def block_txids(height):
        """The txids of the block at `height`, in block order."""

    def tx_merkle(txid, height):
        """(branch, position) of `txid` in the block at `height`; ValueError if absent."""

    def txid_at(height, pos, with_merkle=False):
        """(txid, branch or None) at position `pos` of block `height`; ValueError if none."""

    def raw_transaction(txid_hex, verbose=False):
        """A transaction from the node (a Deferred)."""

    def fee_histogram():
        """The mempool's [[fee rate sat/vB, vsize], ...] with fee rates decreasing."""

    def fee_estimate_target(number):
        """The confirmation target the node is asked for when a client asks `number`
        (the coin buckets targets, so clients cannot force cache misses)."""

    def estimatefee(number, mode=None):
        """The node's fee estimate in coin/kvB, -1 without one (a Deferred)."""

    def relayfee():
        """The node's minimum relay fee in coin/kvB (a Deferred)."""

    def broadcast(raw_hex):
        """Send a transaction to the node; its txid (a Deferred)."""

    def broadcast_package(raw_txs):
        """Submit a package to the node; its `submitpackage` result (a Deferred)."""

    def node_mempool_info():
        """The node's `getmempoolinfo` dict (a Deferred)."""

    def node_network_info():
        """The node's `getnetworkinfo` dict (a Deferred)."""

    def test_mempool_accept(raw_txs):
        """The node's `testmempoolaccept` result list for raw hex transactions (a Deferred)."""


class IPeerDirectory(Interface):
    """What the protocol layer asks of peer discovery (a directory that knows no peers
    stands in when discovery is off)."""

    def on_peers_subscribe(is_tor=False):
        """`server.peers.subscribe`'s answer: [[ip, host, [features]], ...]."""

    def on_add_peer(features, source_addr):
        """`server.add_peer`: consider a peer that announced itself (a Deferred of True
        if it was accepted)."""

    def is_tor_client(address):
        """Whether a client at `address` came in through our Tor proxy."""
