"""Session framing without sockets: slow readers, arbitrary splits, garbage (hypothesis)."""

import types

import orjson
from hypothesis import given, settings as hsettings, strategies as st
from twisted.internet import task
from twisted.internet.testing import StringTransport

from electrumx.protocol.send_budget import PausedSendBudget
from electrumx.protocol.stream_session import ElectrumSession
from electrumx.protocol.stats import ServerStats


class EchoMethods:
    """Just enough of ElectrumMethods: negotiation and one echo method."""

    def negotiate(self, session, params):
        session.protocol_version = (1, 4)
        return ["test", "1.4"]

    def handler(self, session, method, notification=False):
        return (lambda session, *args: list(args)) if method == "echo" else None

    def session_closed(self, session):
        pass


def make_session(max_recv=10_000, max_send=100_000):
    settings = types.SimpleNamespace(
        max_recv=max_recv, max_send=max_send, cost_soft_limit=0, cost_hard_limit=0,
        bandwidth_unit_cost=5000, request_sleep=0, initial_concurrent=10, request_timeout=30,
        handshake_timeout=10, partial_request_timeout=30, unidentified_timeout=30)
    clock = task.Clock()
    manager = types.SimpleNamespace(
        settings=settings, clock=clock, methods=EchoMethods(), max_buffered=2 * max_send,
        send_budget=PausedSendBudget(clock, 6 * max_send),
        next_session_id=lambda: 1, session_opened=lambda s: None,
        session_identified=lambda s: None,
        session_closed=lambda s: None, stats=ServerStats())
    session = ElectrumSession(manager)
    transport = StringTransport()
    session.makeConnection(transport)
    return session, transport


def run_due_calls(session):
    """Run what is due on the session's Clock: a batch that ran past BATCH_SLICE_SECS of
    wall time (on a busy machine) yields to the reactor, and goes on only then."""
    clock = session.manager.clock
    while any(call.getTime() <= clock.seconds() for call in clock.getDelayedCalls()):
        clock.advance(0)


def replies(transport):
    return [orjson.loads(line) for line in transport.value().splitlines() if line]


def test_a_client_that_stops_reading_is_cut_off_at_a_bound():
    session, transport = make_session(max_send=10_000)
    session.dataReceived(b'{"id": 1, "method": "server.version"}\n')
    session.pauseProducing()                     # the kernel buffer to the client is full
    assert transport.producerState == "paused"   # and we stop reading its requests
    sent = 0
    while not transport.disconnecting and sent < 1_000:
        session.send_notification("blockchain.headers.subscribe", [{"hex": "00" * 80}])
        sent += 1
    assert transport.disconnecting               # aborted, not buffered without end
    assert len(transport.value()) <= 2 * 10_000 + 1_000


LINES = [b'{"id": 1, "method": "server.version", "params": ["t", "1.4"]}',
         b'{"id": 2, "method": "echo", "params": [1, "two", null]}',
         b'[{"id": 3, "method": "echo"}, {"id": "x", "method": "echo", "params": [3]}]',
         b'{"method": "echo", "params": [4]}',
         b'{"id": 5, "method": "nope"}']


@hsettings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_lines_split_anywhere_get_the_same_answers(cuts):
    stream = b"\n".join(LINES) + b"\n"
    whole_session, whole = make_session()
    whole_session.dataReceived(stream)
    split_session, split = make_session()
    pos = 0
    for cut in cuts:
        split_session.dataReceived(stream[pos:pos + cut])
        pos += cut
    split_session.dataReceived(stream[pos:])
    run_due_calls(whole_session)
    run_due_calls(split_session)
    assert replies(split) == replies(whole)
    assert len(replies(whole)) == 4              # the notification gets no answer
    assert replies(whole)[1]["result"] == [1, "two", None]     # echoed, not an error


@hsettings(max_examples=200, deadline=None)
@given(st.binary(max_size=3_000))
def test_garbage_never_breaks_the_session(data):
    session, transport = make_session(max_recv=1_000)
    session.dataReceived(b'{"id": 1, "method": "server.version"}\n')
    session.dataReceived(data + b"\n")
    run_due_calls(session)
    for reply in replies(transport)[1:]:
        assert "error" in reply or "result" in reply


def test_a_partial_line_is_timed_only_while_the_server_reads():
    """A request line must arrive within PARTIAL_REQUEST_TIMEOUT (30 s here) of its first
    byte; while the server does not read (its client is not reading replies), the rest
    may be waiting on the server's side, so that time does not count."""
    session, transport = make_session()
    clock = session.manager.clock
    session.dataReceived(b'{"id": 1, "method": "server.version"}\n{"id": 2, "met')
    clock.advance(20)
    session.dataReceived(b'hod": "echo", ')          # more bytes: still the same line
    session.pauseProducing()
    clock.advance(100)
    assert not transport.disconnecting
    session.resumeProducing()                        # a new period from here
    clock.advance(29)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting
    assert replies(transport)[-1] == {
        "jsonrpc": "2.0", "id": None,
        "error": {"code": 1, "message": "request not received in full within 30 seconds"}}
    assert session.stats.timed_out == {"partial_request": 1}
