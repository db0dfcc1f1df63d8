"""Every Electrum method, and which protocol versions have which.

The transport hands each request to `ElectrumMethods.handler(session, name)`;
the table below is the whole version story (REFERENCE §1.2):

    method                                   since   until (excl.)
    blockchain.scripthash.get_balance        1.4     1.7
    blockchain.scripthash.get_history        1.4     1.7    (+ from_height, to_height)
    blockchain.scripthash.get_mempool        1.4     1.7
    blockchain.scripthash.listunspent        1.4     1.7
    blockchain.scripthash.subscribe          1.4     1.7
    blockchain.scripthash.unsubscribe        1.4.2   1.7
    blockchain.scriptpubkey.get_balance      1.7
    blockchain.scriptpubkey.get_history      1.7            (+ from_height, to_height)
    blockchain.scriptpubkey.get_mempool      1.7
    blockchain.scriptpubkey.listunspent      1.7
    blockchain.scriptpubkey.subscribe        1.7
    blockchain.scriptpubkey.unsubscribe      1.7
    blockchain.outpoint.subscribe            1.7
    blockchain.outpoint.get_status           1.7
    blockchain.outpoint.unsubscribe          1.7
    blockchain.relayfee                      1.4     1.6
    blockchain.estimatefee(number)           1.4     1.6
    blockchain.estimatefee(number, mode)     1.6
    blockchain.block.headers -> "hex"        1.4     1.6
    blockchain.block.headers -> "headers"    1.6
    blockchain.transaction.broadcast_package 1.6
    blockchain.transaction.testmempoolaccept 1.7
    mempool.get_info                         1.6
    mempool.recent                           1.7
    server.ping() -> null                    1.4     1.7
    server.ping(pong_len, data) -> {data}    1.7
    server.features with hash_function       1.4     1.7
    everything else                          1.4

From 1.7 a client's notification runs a notification handler, of which there is
one: `server.ping(data)`, cover traffic that gets no reply.  Below 1.7 a
notification runs the request's handler and its answer is dropped, as before.
The server pings 1.7 sessions itself on each block (`pings.BlockPings`).

from_height/to_height page a history the way Fulcrum does (see
`ScriptQueries.history`); they are an extension, advertised at 1.7 by the
`history_pagination` key of server.features.
"""

from electrumx.protocol.errors import BAD_REQUEST, RPCError
from electrumx.protocol.methods import arguments
from electrumx.protocol.methods.fees import FeeMethods
from electrumx.protocol.methods.headers import HeaderMethods
from electrumx.protocol.methods.mempool import MempoolMethods
from electrumx.protocol.methods.pings import BlockPings
from electrumx.protocol.methods.script_queries import ScriptQueries
from electrumx.protocol.methods.scripthash import ScriptHashMethods
from electrumx.protocol.methods.scriptpubkey import ScriptPubKeyMethods
from electrumx.protocol.methods.server import ServerMethods
from electrumx.protocol.methods.transaction import TransactionMethods
from electrumx.protocol.methods.watches import WatchMethods
from electrumx.protocol.subscriptions import history_limit
from electrumx.protocol.version import V1_4, V1_4_2, V1_6, V1_7


class ElectrumMethods:
    """The method handlers of protocols 1.4 to 1.7, picked by negotiated version.

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
        queries = ScriptQueries(reader, history_limit(settings.max_send))
        scripts = ScriptHashMethods(queries, subscriptions)
        spks = ScriptPubKeyMethods(queries, settings.coin)
        watches = WatchMethods(reader, subscriptions, settings.coin)
        txs = TransactionMethods(reader)
        fees = FeeMethods(reader)
        mempool = MempoolMethods(reader)
        self.pings = BlockPings(reader)
        self._methods = (
            # (name, first version, first version without it, handler)
            ("server.version", V1_4, None, self.server.version),
            ("server.features", V1_4, None, self.server.features),
            ("server.banner", V1_4, None, self.server.banner),
            ("server.donation_address", V1_4, None, self.server.donation_address),
            ("server.ping", V1_4, V1_7, self.server.ping),
            ("server.ping", V1_7, None, self.server.ping_with_padding),
            ("server.peers.subscribe", V1_4, None, self.server.peers_subscribe),
            ("server.add_peer", V1_4, None, self.server.add_peer),
            ("blockchain.headers.subscribe", V1_4, None, headers.subscribe),
            ("blockchain.block.header", V1_4, None, headers.block_header),
            ("blockchain.block.headers", V1_4, V1_6, headers.block_headers),
            ("blockchain.block.headers", V1_6, None, headers.block_headers_list),
            ("blockchain.estimatefee", V1_4, V1_6, fees.estimatefee),
            ("blockchain.estimatefee", V1_6, None, fees.estimatefee_with_mode),
            ("blockchain.relayfee", V1_4, V1_6, fees.relayfee),
            ("blockchain.scripthash.get_balance", V1_4, V1_7, scripts.get_balance),
            ("blockchain.scripthash.get_history", V1_4, V1_7, scripts.get_history),
            ("blockchain.scripthash.get_mempool", V1_4, V1_7, scripts.get_mempool),
            ("blockchain.scripthash.listunspent", V1_4, V1_7, scripts.listunspent),
            ("blockchain.scripthash.subscribe", V1_4, V1_7, scripts.subscribe),
            ("blockchain.scripthash.unsubscribe", V1_4_2, V1_7, scripts.unsubscribe),
            ("blockchain.scriptpubkey.get_balance", V1_7, None, spks.get_balance),
            ("blockchain.scriptpubkey.get_history", V1_7, None, spks.get_history),
            ("blockchain.scriptpubkey.get_mempool", V1_7, None, spks.get_mempool),
            ("blockchain.scriptpubkey.listunspent", V1_7, None, spks.listunspent),
            ("blockchain.scriptpubkey.subscribe", V1_7, None, watches.scriptpubkey_subscribe),
            ("blockchain.scriptpubkey.unsubscribe", V1_7, None,
             watches.scriptpubkey_unsubscribe),
            ("blockchain.outpoint.subscribe", V1_7, None, watches.outpoint_subscribe),
            ("blockchain.outpoint.get_status", V1_7, None, watches.outpoint_get_status),
            ("blockchain.outpoint.unsubscribe", V1_7, None, watches.outpoint_unsubscribe),
            ("blockchain.transaction.broadcast", V1_4, None, txs.broadcast),
            ("blockchain.transaction.broadcast_package", V1_6, None, txs.broadcast_package),
            ("blockchain.transaction.testmempoolaccept", V1_7, None, txs.testmempoolaccept),
            ("blockchain.transaction.get", V1_4, None, txs.get),
            ("blockchain.transaction.get_merkle", V1_4, None, txs.get_merkle),
            ("blockchain.transaction.id_from_pos", V1_4, None, txs.id_from_pos),
            ("mempool.get_fee_histogram", V1_4, None, mempool.get_fee_histogram),
            ("mempool.get_info", V1_6, None, mempool.get_info),
            ("mempool.recent", V1_7, None, mempool.recent),
        )
        self._notifications = (
            # (name, first version, first version without it, handler)
            ("server.ping", V1_7, None, self.server.ping_notification),
        )
        self._tables = {}

    def table(self, version: tuple, notifications: bool = False) -> dict:
        """{method name: handler} of requests (or of notifications, from 1.7) for a
        negotiated version (built once per version)."""
        key = (version, notifications)
        table = self._tables.get(key)
        if table is None:
            rows = self._notifications if notifications else self._methods
            table = self._tables[key] = {
                name: handler for name, since, until, handler in rows
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
            answer = self.server.version(session, **params)
        elif isinstance(params, list):
            answer = self.server.version(session, *params)
        else:
            raise RPCError(BAD_REQUEST, "server.version params must be a list or an object")
        if session.protocol_version >= V1_7:
            self.pings.add(session)
        return answer

    def handler(self, session, method: str, notification: bool = False):
        """The callable(session, *params) for `method` in the session's version, or None.

        From 1.7 a notification is looked up among the notification handlers.
        """
        version = session.protocol_version
        if version is None:
            return None
        return self.table(version, notification and version >= V1_7).get(method)

    def is_tor_client(self, address: str) -> bool:
        """Whether a client at `address` came in over Tor (it is our Tor proxy's address)."""
        return self.peers.is_tor_client(address)

    def session_closed(self, session):
        """Release what the session held (its subscriptions, its place among the pinged)."""
        self.subscriptions.session_closed(session)
        self.pings.discard(session)
