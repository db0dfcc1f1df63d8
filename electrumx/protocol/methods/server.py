"""The `server.*` methods: identity, version negotiation, banner, peers."""

from electrumx import SERVER_VERSION
from electrumx.protocol import costs
from electrumx.protocol.banner import server_banner
from electrumx.protocol.errors import BAD_REQUEST, ReplyAndDisconnect, RPCError
from electrumx.protocol.methods.daemon import ask_daemon
from electrumx.protocol.version import (PROTOCOL_MAX, PROTOCOL_MIN, UnsupportedVersion,
                                        negotiate_version, version_string)

CLIENT_NAME_CHARS = 100


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
        session.bump_cost(costs.FEATURES)
        return server_features(self.settings)

    async def banner(self, session):
        session.bump_cost(costs.BANNER)
        return await ask_daemon(server_banner(self.settings, self.reader, session.is_tor))

    def donation_address(self, session):
        session.bump_cost(costs.CONSTANT_ANSWER)
        return self.settings.donation_address or ""

    def ping(self, session):
        session.bump_cost(costs.CONSTANT_ANSWER)
        return None

    def peers_subscribe(self, session):
        """Known peers as [ip, host, features]; despite the name, never a subscription."""
        session.bump_cost(costs.PEER_LIST)
        return self.peers.on_peers_subscribe(session.is_tor)

    def add_peer(self, session, features):
        """A server asking to be listed; the peer directory checks it later."""
        session.bump_cost(costs.ADD_PEER)
        return self.peers.on_add_peer(features, session.remote_address)
