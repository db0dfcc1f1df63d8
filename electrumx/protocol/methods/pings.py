"""The server's own `server.ping` notifications to protocol 1.7 clients: cover traffic.

Protocol 1.7 lets either side send `server.ping` as a notification.  A server
sends them so that someone watching an encrypted connection cannot tell from
the mere arrival of data after a block whether one of the wallet's scripts
changed.  ElectrumX 2.0 pads each session to two messages per block and adds
random extra pings, on blocks and, rarely, on mempool changes.

We keep it simpler and bounded: on each new tip (a block, or a reorg's new
chain), every 1.7 session gets exactly one ping, after the notifications that
change caused.  That is one ~120-byte message per session per block: the
same order of work as the headers notifications, and no timers or randomness.
"""

from zope.interface import implementer

from electrumx.interfaces import IIndexListener
from electrumx.logs import Logger

PING_METHOD = "server.ping"
PING_PADDING = "00" * 64
"""What each ping carries: 64 bytes in hex, about the size of a status notification
(ElectrumX 2.0 pads its pings to 128 hex digits too)."""


@implementer(IIndexListener)
class BlockPings:
    """Pings the sessions added here once per new tip of `reader` (an IChainReader).

    Constructed after the subscription registry, it hears of each change after
    the registry, so the ping follows that change's other notifications.
    """

    log = Logger()

    def __init__(self, reader):
        self.reader = reader
        self.sessions: set = set()
        self._tip = reader.tip
        reader.add_listener(self)

    def add(self, session):
        self.sessions.add(session)

    def discard(self, session):
        self.sessions.discard(session)

    def on_index_change(self, touched, height):
        tip = self.reader.tip
        if tip == self._tip:            # a mempool change: no ping
            return
        self._tip = tip
        for session in list(self.sessions):
            try:
                session.send_notification(PING_METHOD, [PING_PADDING])
            except Exception:       # one session's failure must not cost the others a ping
                self.log.failure("pinging session {id} failed", id=session.session_id)
