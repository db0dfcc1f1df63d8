"""Telling systemd how the server is doing, for a unit of `Type=notify`.

systemd names a datagram socket in $NOTIFY_SOCKET; each message is one
datagram of `KEY=VALUE` lines (sd_notify(3)).  The server sends `READY=1`
once it serves clients, `STATUS=` with its sync progress or state, and
`STOPPING=1` when it begins to shut down.  Without $NOTIFY_SOCKET (not run
by systemd) every call does nothing.  A message that cannot be sent is
dropped: telling systemd must never stop the server.
"""

import os
import socket

from electrumx.logs import Logger


class SystemdNotifier:
    """Sends sd_notify messages to the socket named by $NOTIFY_SOCKET, if any."""

    log = Logger()

    def __init__(self, environ=None):
        environ = os.environ if environ is None else environ
        path = environ.get("NOTIFY_SOCKET", "")
        if path.startswith("@"):                # Linux's abstract socket namespace
            path = "\0" + path[1:]
        self.address = path or None
        self._socket = None
        self._warned = False
        self.last_status = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str):
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, text: str):
        """The one line `systemctl status` shows under the unit; sent only when it changed."""
        if text != self.last_status:
            self._send(f"STATUS={text}")

    def stopping(self):
        self._send("STOPPING=1\nSTATUS=stopping")

    def _send(self, message: str):
        if self.address is None:
            return
        self.last_status = next((line[7:] for line in message.splitlines()
                                 if line.startswith("STATUS=")), self.last_status)
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(message.encode(), self.address)
        except OSError as e:
            if not self._warned:
                self._warned = True
                self.log.warn("cannot notify systemd at $NOTIFY_SOCKET: {error}",
                              error=e.strerror or e)

    def close(self):
        if self._socket is not None:
            self._socket.close()
            self._socket = None
