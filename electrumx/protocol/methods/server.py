"""The `server.*` methods: identity, version negotiation, banner, peers."""

from electrumx import SERVER_VERSION
from electrumx.protocol import costs
from electrumx.protocol.banner import server_banner
from electrumx.protocol.errors import BAD_REQUEST, ReplyAndDisconnect, RPCError
from electrumx.protocol.methods import params
from electrumx.protocol.methods.daemon import ask_daemon
from electrumx.protocol.version import (PROTOCOL_MAX, PROTOCOL_MIN, V1_7, UnsupportedVersion,
                                        negotiate_version, version_string)

CLIENT_NAME_CHARS = 100
HISTORY_PAGINATION = "history_pagination"
"""The `server.features` key (at protocol 1.7) saying that get_history takes Fulcrum's
from_height and to_height; its value is True."""


def server_features(settings) -> dict:
    """The `server.features` dict (also what this server tells its peers).

    `settings.report_services` holds services with .protocol, .host and .port
    whose str() is "protocol://host:port".
    """
    hosts: dict[str, dict] = {}
    for service in settings.report_services:
        hosts.setdefault(str(service.host), {}).setdefault(f"{service.protocol}_port",
                                                           service.port)
    return {
        "hosts": hosts,
        "pruning": None,
        "server_version": SERVER_VERSION,
        "protocol_min": version_string(PROTOCOL_MIN),
        "protocol_max": version_string(PROTOCOL_MAX),
        "genesis_hash": settings.coin.GENESIS_HASH,
        "hash_function": "sha256",
        "services": [str(service) for service in settings.report_services],
    }


class ServerMethods:
    """Handlers of the `server.*` family; `peers` is the IPeerDirectory."""

    def __init__(self, reader, settings, peers):
        self.reader = reader
        self.settings = settings
        self.peers = peers

    def version(self, session, client_name="", protocol_version=None, *_ignored, **_also_ignored):
        """Negotiate the protocol version; only the first call of a session is accepted.

        Extra arguments are ignored, as protocol 1.6 asks, so future clients can add some.
        """
        session.bump_cost(costs.NEGOTIATE)
        if session.protocol_version is not None:
            raise RPCError(BAD_REQUEST, "server.version already sent")
        client_name = str(client_name)
        drop_client = self.settings.drop_client
        if client_name and drop_client is not None and drop_client.match(client_name):
            raise ReplyAndDisconnect(BAD_REQUEST,
                                     f"unsupported client: {client_name[:CLIENT_NAME_CHARS]}")
        try:
            version = negotiate_version(protocol_version)
        except UnsupportedVersion as error:
            raise ReplyAndDisconnect(BAD_REQUEST, str(error)) from None
        session.client_name = client_name[:CLIENT_NAME_CHARS]
        session.protocol_version = version
        return [SERVER_VERSION, version_string(version)]

    def features(self, session):
        """The features; at 1.7 without `hash_function` (1.7 names scripts, not their
        hashes) and with the history pagination extension advertised."""
        session.bump_cost(costs.FEATURES)
        features = server_features(self.settings)
        if session.protocol_version >= V1_7:
            del features["hash_function"]
            features[HISTORY_PAGINATION] = True
        return features

    async def banner(self, session):
        session.bump_cost(costs.BANNER)
        return await ask_daemon(server_banner(self.settings, self.reader, session.is_tor))

    def donation_address(self, session):
        session.bump_cost(costs.CONSTANT_ANSWER)
        return self.settings.donation_address or ""

    def ping(self, session):
        """Protocol 1.4 to 1.6: null, to keep the session alive."""
        session.bump_cost(costs.CONSTANT_ANSWER)
        return None

    def ping_with_padding(self, session, pong_len=0, data=""):
        """Protocol 1.7: {"data": pong_len zero digits}, padding for the client's cover
        traffic; `data` is the client's own padding (hex), read and dropped."""
        session.bump_cost(costs.CONSTANT_ANSWER)
        params.hex_data(data, "data")
        pong_len = params.non_negative_int(pong_len, "pong_len")
        if pong_len > self.settings.max_send:
            raise RPCError(BAD_REQUEST, f"pong_len should be at most {self.settings.max_send}")
        return {"data": "0" * pong_len}

    def ping_notification(self, session, data=""):
        """Protocol 1.7: a client's server.ping notification (cover traffic): no reply."""
        session.bump_cost(costs.CONSTANT_ANSWER)
        params.hex_data(data, "data")

    def peers_subscribe(self, session):
        """Known peers as [ip, host, features]; despite the name, never a subscription."""
        session.bump_cost(costs.PEER_LIST)
        return self.peers.on_peers_subscribe(session.is_tor)

    def add_peer(self, session, features):
        """A server asking to be listed; the peer directory checks it later."""
        session.bump_cost(costs.ADD_PEER)
        return self.peers.on_add_peer(features, session.remote_address)
