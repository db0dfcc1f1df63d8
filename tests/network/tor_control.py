"""A stand-in for tor's control port on 127.0.0.1: enough of the control protocol for
txtorcon to connect (PROTOCOLINFO, AUTHENTICATE, the bootstrap GETINFOs) and for
ADD_ONION and DEL_ONION, which it records.  No tor binary is installed here.
"""

from twisted.protocols.basic import LineOnlyReceiver

from tests.fixtures.host import listen_on_loopback

SERVICE_ID = "x" * 52 + "2345"
NEW_KEY = "ED25519-V3:" + "k" * 86 + "=="

REPLIES = {
    "PROTOCOLINFO 1": ['250-PROTOCOLINFO 1', '250-AUTH METHODS=NULL',
                       '250-VERSION Tor="0.4.8.10"', '250 OK'],
    "AUTHENTICATE": ["250 OK"],
    "GETINFO signal/names": ["250-signal/names=RELOAD SHUTDOWN DUMP DEBUG HALT NEWNYM",
                             "250 OK"],
    "GETINFO version": ["250-version=0.4.8.10", "250 OK"],
    "GETINFO events/names": ["250-events/names=CIRC STREAM HS_DESC STATUS_CLIENT", "250 OK"],
    "USEFEATURE EXTENDED_EVENTS": ["250 OK"],
}


class ControlSession(LineOnlyReceiver):
    delimiter = b"\r\n"

    def lineReceived(self, line):
        command = line.decode()
        control = self.factory.control
        control.commands.append(command)
        if command.startswith("ADD_ONION "):
            lines = [f"250-ServiceID={SERVICE_ID}"]
            if command.split()[1] == "NEW:ED25519-V3":
                lines.append(f"250-PrivateKey={NEW_KEY}")
            lines.append("250 OK")
        elif command.startswith("DEL_ONION "):
            lines = ["250 OK"]
        else:
            lines = REPLIES.get(command, ['510 Unrecognized command "%s"' % command])
        for reply in lines:
            self.sendLine(reply.encode())


class TorControl:
    def __init__(self):
        self.commands = []
        self.port = None
        self.listening = None


async def start_tor_control() -> TorControl:
    control = TorControl()
    control.listening = await listen_on_loopback(ControlSession, control=control)
    control.port = control.listening.getHost().port
    return control
