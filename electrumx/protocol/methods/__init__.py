"""Every Electrum method, and which protocol versions have which.

The transport hands each request to `ElectrumMethods.handler(session, name)`;
the table below is the whole version story (REFERENCE §1.2):

    method                                   since   until (excl.)
    blockchain.scripthash.unsubscribe        1.4.2
    blockchain.relayfee                      1.4     1.6
    blockchain.estimatefee(number)           1.4     1.6
    blockchain.estimatefee(number, mode)     1.6
    blockchain.block.headers -> "hex"        1.4     1.6
    blockchain.block.headers -> "headers"    1.6
    blockchain.transaction.broadcast_package 1.6
    mempool.get_info                         1.6
    everything else                          1.4
"""

from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.methods import arguments
from electrumx.protocol.methods.fees import FeeMethods
from electrumx.protocol.methods.headers import HeaderMethods
from electrumx.protocol.methods.mempool import MempoolMethods
from electrumx.protocol.methods.scripthash import ScriptHashMethods
from electrumx.protocol.methods.server import ServerMethods
from electrumx.protocol.methods.transaction import TransactionMethods
from electrumx.protocol.subscriptions import history_limit

V1_4, V1_4_2, V1_6 = (1, 4), (1, 4, 2), (1, 6)


class ElectrumMethods:
    """The method handlers of protocols 1.4 to 1.6, picked by negotiated version.

    `reader` is the IChainReader, `subscriptions` the SubscriptionRegistry,
    `peers` the IPeerDirectory (`electrumx.network.directory.NoPeers` when the
    server does not discover peers).  `clock` is accepted for the transport's
    contract; no handler needs time yet.
    """

    def __init__(self, *, reader, settings, subscriptions, peers, clock):
        self.reader = reader
        self.settings = settings
        self.subscriptions = subscriptions
        self.clock = clock
        self.peers = peers
        self.server = ServerMethods(reader, settings, peers)
        headers = HeaderMethods(reader, subscriptions)
        scripts = ScriptHashMethods(reader, subscriptions, history_limit(settings.max_send))
        txs = TransactionMethods(reader)
        fees = FeeMethods(reader)
        mempool = MempoolMethods(reader)
        self._methods = (
            # (name, first version, first version without it, handler)
            ("server.version", V1_4, None, self.server.version),
            ("server.features", V1_4, None, self.server.features),
            ("server.banner", V1_4, None, self.server.banner),
            ("server.donation_address", V1_4, None, self.server.donation_address),
            ("server.ping", V1_4, None, self.server.ping),
            ("server.peers.subscribe", V1_4, None, self.server.peers_subscribe),
            ("server.add_peer", V1_4, None, self.server.add_peer),
            ("blockchain.headers.subscribe", V1_4, None, headers.subscribe),
            ("blockchain.block.header", V1_4, None, headers.block_header),
            ("blockchain.block.headers", V1_4, V1_6, headers.block_headers),
            ("blockchain.block.headers", V1_6, None, headers.block_headers_list),
            ("blockchain.estimatefee", V1_4, V1_6, fees.estimatefee),
            ("blockchain.estimatefee", V1_6, None, fees.estimatefee_with_mode),
            ("blockchain.relayfee", V1_4, V1_6, fees.relayfee),
            ("blockchain.scripthash.get_balance", V1_4, None, scripts.get_balance),
            ("blockchain.scripthash.get_history", V1_4, None, scripts.get_history),
            ("blockchain.scripthash.get_mempool", V1_4, None, scripts.get_mempool),
            ("blockchain.scripthash.listunspent", V1_4, None, scripts.listunspent),
            ("blockchain.scripthash.subscribe", V1_4, None, scripts.subscribe),
            ("blockchain.scripthash.unsubscribe", V1_4_2, None, scripts.unsubscribe),
            ("blockchain.transaction.broadcast", V1_4, None, txs.broadcast),
            ("blockchain.transaction.broadcast_package", V1_6, None, txs.broadcast_package),
            ("blockchain.transaction.get", V1_4, None, txs.get),
            ("blockchain.transaction.get_merkle", V1_4, None, txs.get_merkle),
            ("blockchain.transaction.id_from_pos", V1_4, None, txs.id_from_pos),
            ("mempool.get_fee_histogram", V1_4, None, mempool.get_fee_histogram),
            ("mempool.get_info", V1_6, None, mempool.get_info),
        )
        self._tables = {}

    def table(self, version: tuple) -> dict:
        """{method name: handler} for a negotiated version (built once per version)."""
        table = self._tables.get(version)
        if table is None:
            table = self._tables[version] = {
                name: handler for name, since, until, handler in self._methods
                if since <= version and (until is None or version < until)}
        return table

    def negotiate(self, session, params) -> list:
        """Handle `server.version` with positional (list) or named (dict) params.

        Sets session.client_name and session.protocol_version; raises
        ReplyAndDisconnect for an unsupported version or a DROP_CLIENT match,
        and RPCError(BAD_REQUEST) for a second call.
        """
        if isinstance(params, dict):
            arguments.check("server.version", self.server.version, params)
            return self.server.version(session, **params)
        if isinstance(params, list):
            return self.server.version(session, *params)
        raise RPCError(BAD_REQUEST, "server.version params must be a list or an object")

    def handler(self, session, method: str):
        """The callable(session, *params) for `method` in the session's version, or None."""
        if session.protocol_version is None:
            return None
        return self.table(session.protocol_version).get(method)

    def is_tor_client(self, address: str) -> bool:
        """Whether a client at `address` came in over Tor (it is our Tor proxy's address)."""
        return self.peers.is_tor_client(address)

    def session_closed(self, session):
        """Release what the session held (its subscriptions)."""
        self.subscriptions.session_closed(session)
