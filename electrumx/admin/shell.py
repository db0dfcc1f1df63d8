"""The admin shell: a Python prompt inside the running server, over SSH.

A Twisted Conch manhole, reached with any SSH client:

    ssh -p 8022 admin@127.0.0.1

Only public keys listed in the ADMIN_SSH_AUTHORIZED_KEYS file get in (any
user name); passwords and keyboard-interactive are never offered, because
the portal has no checker for them.  Each login gets a fresh namespace of the
live objects, named in `NAMES`: a Python prompt on a terminal, or, without
one, a script read from the channel (`shell_session`).  Code run there runs
on the reactor thread: a slow expression stalls the whole server while it runs.
"""

from functools import partial

from twisted.conch import manhole, manhole_ssh
from twisted.conch.checkers import SSHPublicKeyChecker
from twisted.conch.insults import insults
from twisted.conch.ssh import keys
from twisted.cred import portal
from twisted.internet.endpoints import serverFromString

from electrumx.admin.keys import AuthorizedKeysFile, fingerprint, load_or_create_host_key
from electrumx.admin.shell_session import ShellSession
from electrumx.config.services import Service, host_port
from electrumx.listener import Listener
from electrumx.logs import Logger

log = Logger()

NAMES = {
    "controller": "the Controller, top of the service tree",
    "indexer": "the Indexer (daemon -> prefetcher -> block processor)",
    "db": "the IndexDB (height, tip, history, UTXOs)",
    "mempool": "the MemPool",
    "daemon": "the Daemon, the node's RPC client",
    "reader": "the ChainReader the protocol layer reads through",
    "subscriptions": "the SubscriptionRegistry",
    "sessions": "the SessionManager (`sessions.sessions` are the client sessions)",
    "peers": "the peer manager, or None while there is none",
    "settings": "the Settings",
    "reactor": "the reactor",
}
"""The names a shell starts with, and what each is (also in the README)."""


def shell_namespace(controller) -> dict:
    """The live objects of `controller`, under the names of `NAMES`."""
    return {
        "controller": controller,
        "indexer": controller.indexer,
        "db": controller.db,
        "mempool": controller.mempool,
        "daemon": controller.daemon,
        "reader": controller.reader,
        "subscriptions": controller.subscriptions,
        "sessions": controller.sessions,
        "peers": getattr(controller, "peers", None),
        "settings": controller.settings,
        "reactor": controller.reactor,
    }


class LoggedKeyChecker(SSHPublicKeyChecker):
    """Public keys from the authorized_keys file; every signed attempt is logged."""

    def requestAvatarId(self, credentials):
        d = super().requestAvatarId(credentials)
        if not credentials.signature:
            return d    # the client only asks whether the key would do

        def describe():
            try:
                return fingerprint(keys.Key.fromString(credentials.blob))
            except keys.BadKeyError:
                return "an unreadable key"

        def accepted(avatar_id):
            log.info("admin shell: {user} logged in with {key}",
                     user=credentials.username.decode(errors="replace"), key=describe())
            return avatar_id

        def refused(failure):
            log.warn("admin shell: refused {user} with {key}",
                     user=credentials.username.decode(errors="replace"), key=describe())
            return failure

        return d.addCallbacks(accepted, refused)


def shell_factory(namespace, authorized_keys: str, host_key: keys.Key):
    """The SSH factory of the shell: `namespace()` gives each login its starting names."""
    realm = manhole_ssh.TerminalRealm()
    realm.sessionFactory = partial(ShellSession, namespace=namespace)
    realm.chainedProtocolFactory = lambda: insults.ServerProtocol(manhole.ColoredManhole,
                                                                  namespace())
    checker = LoggedKeyChecker(AuthorizedKeysFile(authorized_keys))
    factory = manhole_ssh.ConchFactory(portal.Portal(realm, [checker]))
    # ConchFactory's key dicts are class attributes; give this factory its own.
    factory.publicKeys = {host_key.sshType(): host_key.public()}
    factory.privateKeys = {host_key.sshType(): host_key}
    return factory


class AdminShellService(Listener):
    """Listens for admin shell logins; the host key is loaded (or made) when it starts.

    Like every listener, a port it cannot bind calls `on_failure`; a host key
    it cannot use raises from the start.  `port` is the listening port once
    started (its `getHost()` has the number when 0 was asked for).
    """

    def __init__(self, reactor, host: str, port: int, authorized_keys: str,
                 host_key_path: str, namespace, on_failure):
        endpoint = serverFromString(reactor, Service("tcp", host, port).endpoint_description())
        super().__init__(endpoint, None, "admin-shell", host_port(host, port), on_failure)
        self.setName("admin-shell")
        self.authorized_keys = authorized_keys
        self.host_key_path = host_key_path
        self.namespace = namespace
        self.host_key = None

    @classmethod
    def from_settings(cls, settings, reactor, namespace, on_failure):
        """The shell the ADMIN_SSH_* settings describe (their presence is checked by the loader)."""
        return cls(reactor, settings.admin_ssh_host, settings.admin_ssh_port,
                   settings.admin_ssh_authorized_keys, settings.admin_ssh_host_key, namespace,
                   on_failure)

    def privilegedStartService(self):
        self.host_key = load_or_create_host_key(self.host_key_path)
        self.factory = shell_factory(self.namespace, self.authorized_keys, self.host_key)
        super().privilegedStartService()

    def log_listening(self, port):
        address = port.getHost()
        log.info("admin shell listening on {host}:{port}, host key {key} {fingerprint}",
                 host=address.host, port=address.port, key=self.host_key.sshType().decode(),
                 fingerprint=fingerprint(self.host_key))
