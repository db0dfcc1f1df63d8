"""The `blockchain.transaction.*` methods: broadcast, fetch, and merkle proofs."""

from electrumx.logs import Logger

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.interfaces import DaemonError
from electrumx.protocol import costs
from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.methods import params
from electrumx.protocol.methods.daemon import ask_daemon


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
