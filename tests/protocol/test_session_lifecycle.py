"""A session's life on a task.Clock and a StringTransport: open, closing, ending, closed.

(test_session_close.py checks the same over real sockets, with clients that
stop reading.)
"""

from electrumx.protocol.session_lifecycle import CLOSE_GRACE_SECS
from tests.protocol.test_framing import make_session, replies

VERSION = b'{"id": 1, "method": "server.version", "params": ["t", "1.4"]}\n'
ECHO = b'{"id": 2, "method": "echo", "params": [2]}\n'


def opened():
    session, transport = make_session()
    left = []
    session.manager.session_closed = left.append
    session.dataReceived(VERSION)
    return session, transport, session.manager.clock, left


def test_a_close_lets_what_is_queued_go_then_aborts_after_the_grace():
    session, transport, clock, left = opened()
    session.close()
    assert not session.is_open and transport.disconnecting and not transport.disconnected
    assert transport.producer is None           # no longer the transport's producer
    session.dataReceived(ECHO)                  # a closing session runs nothing more
    session.send_notification("blockchain.headers.subscribe", [])
    assert [r["id"] for r in replies(transport)] == [1]
    clock.advance(CLOSE_GRACE_SECS)
    assert transport.disconnected               # aborted: the client did not read it all
    session.connectionLost(None)
    assert left == [session] and clock.getDelayedCalls() == []


def test_a_second_close_aborts_at_once():
    session, transport, clock, left = opened()
    session.close()
    session.close()
    assert transport.disconnected and clock.getDelayedCalls() == []


def test_a_connection_lost_while_closing_cancels_the_grace():
    session, transport, clock, left = opened()
    session.close()
    session.connectionLost(None)
    assert left == [session] and clock.getDelayedCalls() == []
    session.close()                             # the manager's late close: nothing
    session.abort()
    session.connectionLost(None)                # and leaving happens once
    assert left == [session] and not transport.disconnected


def test_a_transport_stopping_its_producer_ends_the_session():
    session, transport, clock, left = opened()
    session.stopProducing()
    assert not session.is_open
    session.dataReceived(ECHO)
    session.close()                             # it is going already: no grace
    assert clock.getDelayedCalls() == [] and not transport.disconnecting
    session.connectionLost(None)
    assert left == [session]


def test_an_abort_drops_the_connection_now():
    session, transport, clock, left = opened()
    session.dataReceived(ECHO)
    session.abort()
    assert transport.disconnected and not session.is_open
    assert clock.getDelayedCalls() == []
    session.connectionLost(None)
    assert left == [session]
