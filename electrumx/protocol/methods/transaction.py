"""The `blockchain.transaction.*` methods: broadcast, fetch, and merkle proofs."""

from electrumx.logs import Logger

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.interfaces import DaemonError
from electrumx.protocol import costs
from electrumx.protocol.errors import BAD_REQUEST, DAEMON_ERROR, RPCError
from electrumx.protocol.methods import params
from electrumx.protocol.methods.daemon import ask_daemon

MAX_TESTED_TXS = 25
"""Most transactions one testmempoolaccept takes: bitcoind's own limit."""
MAX_TESTED_TX_HEX = 2 * 4_000_000
"""Longest raw transaction tested, in hex digits: no transaction is larger than a
4 MB block."""
NODE_TROUBLE_CODES = frozenset((
    -1,         # the node could not be reached (our UNAVAILABLE), or a misc node failure
    -28,        # the node is warming up
    -32601,     # the node has no such method (an old node, or a coin without it)
))
"""Node errors that are the server's trouble, not the client's: they stay daemon errors."""


def tested_tx(result: dict) -> dict:
    """One transaction of `testmempoolaccept`'s answer, from the node's entry: txid, wtxid,
    allowed when the node says, and the most precise reason it gives for a refusal
    (the shape ElectrumX 2.0 gives)."""
    tested = {"txid": result.get("txid"), "wtxid": result.get("wtxid")}
    if isinstance(result.get("allowed"), bool):
        tested["allowed"] = result["allowed"]
    reason = (result.get("package-error") or result.get("reject-details")
              or result.get("reject-reason"))
    if reason is not None:
        tested["reason"] = reason
    return tested


def package_summary(result: dict) -> dict:
    """The stable `broadcast_package` answer from bitcoind's `submitpackage` result."""
    summary = {"success": result.get("package_msg") == "success"}
    errors = [{"txid": tx.get("txid"), "error": tx["error"]}
              for tx in result.get("tx-results", {}).values() if tx.get("error")]
    if errors:
        summary["errors"] = errors
    return summary


class TransactionMethods:
    """Handlers of the transaction family."""

    log = Logger()

    def __init__(self, reader):
        self.reader = reader

    async def broadcast(self, session, raw_tx):
        """Send a transaction to the node; its rejection reason goes back to the client."""
        raw_tx = params.hex_string(raw_tx, "raw_tx")
        session.bump_cost(costs.broadcast(len(raw_tx)))
        try:
            txid = await self.reader.broadcast(raw_tx)
        except DaemonError as error:
            self.log.info("transaction rejected: {reason}", reason=error.message)
            raise RPCError(BAD_REQUEST, "the transaction was rejected by network rules."
                                        f"\n\n{error.message}\n[{raw_tx}]") from None
        self.log.info("sent transaction {txid}", txid=txid)
        return txid

    async def broadcast_package(self, session, raw_txs, verbose=False):
        """Submit parents and child together (protocol 1.6; needs bitcoind 28 or later)."""
        raw_txs = params.hex_string_list(raw_txs, "raw_txs")
        verbose = params.boolean(verbose, "verbose")
        session.bump_cost(costs.broadcast(sum(len(tx) for tx in raw_txs)))
        try:
            result = await self.reader.broadcast_package(raw_txs)
        except DaemonError as error:
            self.log.info("package rejected: {reason}", reason=error.message)
            raise RPCError(BAD_REQUEST, "the tx package was rejected by network rules."
                                        f"\n\n{error.message}.") from None
        return result if verbose else package_summary(result)

    async def testmempoolaccept(self, session, raw_txs):
        """Whether the node's mempool would take these transactions (protocol 1.7).

        The node's refusal of the request itself (a transaction it cannot
        decode, too many of them) is the client's error, with the node's words,
        as for a broadcast; a node that is down or lacks the call is a daemon
        error.  (ElectrumX 2.0 makes every node error a daemon error.)
        """
        raw_txs = params.bounded_hex_list(raw_txs, "raw_txs", MAX_TESTED_TXS,
                                          MAX_TESTED_TX_HEX)
        session.bump_cost(costs.broadcast(sum(len(tx) for tx in raw_txs)))
        try:
            results = await self.reader.test_mempool_accept(raw_txs)
        except DaemonError as error:
            if error.code in NODE_TROUBLE_CODES:
                raise RPCError(DAEMON_ERROR, f"daemon error: {error.message}") from None
            raise RPCError(BAD_REQUEST, f"the node refused the test: {error.message}") from None
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise RPCError(DAEMON_ERROR, "daemon error: testmempoolaccept answered "
                                         f"{params.shown(results)}")
        return [tested_tx(result) for result in results]

    async def get(self, session, tx_hash, verbose=False):
        """The raw transaction hex, or the node's verbose dict."""
        params.tx_hash(tx_hash)
        verbose = params.boolean(verbose, "verbose")
        session.bump_cost(costs.TX_GET)
        return await ask_daemon(self.reader.raw_transaction(tx_hash, verbose))

    def get_merkle(self, session, tx_hash, height):
        """The branch proving a confirmed transaction is in the block at `height`."""
        txid = params.tx_hash(tx_hash)
        height = params.non_negative_int(height, "height")
        try:
            branch, pos = self.reader.tx_merkle(txid, height)
        except ValueError as error:
            raise RPCError(BAD_REQUEST, str(error)) from None
        session.bump_cost(costs.merkle(branch))
        return {"block_height": height, "merkle": [hash_to_hex_str(h) for h in branch],
                "pos": pos}

    def id_from_pos(self, session, height, tx_pos, merkle=False):
        """The txid at a position in a block, with its branch if `merkle`."""
        height = params.non_negative_int(height, "height")
        tx_pos = params.non_negative_int(tx_pos, "tx_pos")
        merkle = params.boolean(merkle, "merkle")
        try:
            txid, branch = self.reader.txid_at(height, tx_pos, merkle)
        except ValueError as error:
            raise RPCError(BAD_REQUEST, str(error)) from None
        if not merkle:
            session.bump_cost(costs.TXID_AT)
            return hash_to_hex_str(txid)
        session.bump_cost(costs.merkle(branch))
        return {"tx_hash": hash_to_hex_str(txid),
                "merkle": [hash_to_hex_str(h) for h in branch]}
