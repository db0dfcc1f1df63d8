"""The node client: JSON-RPC over HTTP to bitcoind, batched, with retries and failover.

It uses Twisted's own HTTP client (`Agent` over a persistent connection pool):
txJSON-RPC cannot batch, loses the node's error text, opens a connection per
call and breaks basic auth for long passwords (see README, design notes).

What it does with each kind of failure:

* the node is unavailable: it refuses connections, drops them, times out,
  is warming up (-28), or answers something that is not the JSON-RPC reply
  asked for (not JSON, whatever the HTTP status; a batch reply of the wrong
  length or without an answer to each request; a result of the wrong type;
  a reply over the size limit).  All of these are the node's state, not an
  answer: retry with exponential backoff, moving round-robin to the next
  DAEMON_URL, and log the outage as it starts, every few minutes while it
  lasts, and as it ends (`trouble_log`);
* HTTP 401/403: `DaemonAuthError`, never retried (the credentials are wrong);
  but a node authenticated by its cookie file refuses it after a restart, so
  then the file is read again and the request retried, like an outage;
* a JSON-RPC error object: `DaemonError(code, message)` for the caller, who
  knows what the node meant by it (-5 for an unknown transaction is an
  answer, not a failure).

Anything else raised on the way is a bug of ours and is not retried.

Passwords never reach a log line or an exception: URLs are shown redacted.
"""

import base64

import orjson
from twisted.internet import defer, error, protocol, task
from twisted.web.client import (Agent, HTTPConnectionPool, RequestNotSent,
                                RequestTransmissionFailed, ResponseDone, ResponseFailed)
from twisted.web.client import _HTTP11ClientFactory
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from electrumx.config.daemon_url import CookieUnreadable
from electrumx.index.trouble_log import TroubleLog
from electrumx.interfaces import DaemonError
from electrumx.logs import Logger

WARMUP = -28
METHOD_NOT_FOUND = -32601
NO_SUCH_TX = -5
UNAVAILABLE = -1
"""Our code for a node that could not be reached (bitcoind never sends it)."""


class DaemonAuthError(DaemonError):
    """The node refused our credentials; retrying cannot help."""


class DaemonMismatchError(DaemonError):
    """The node serves another network or chain than the configured coin."""


class _QuietClientFactory(_HTTP11ClientFactory):
    """The pool's connection factory without a log line per connection."""

    noisy = False


class _Unavailable(Exception):
    """The node gave no answer (unreachable, warming up, or garbage): retry it or the next."""


_TRANSPORT_FAILURES = (error.ConnectError, error.ConnectionClosed, error.DNSLookupError,
                       defer.TimeoutError, RequestNotSent, RequestTransmissionFailed,
                       ResponseFailed)
"""How a request to a node that is down, dying or silent fails.  `error.ConnectError`
covers refused, unroutable and timed-out connections; `ResponseFailed`, a reply cut
short.  A cancelled request is not among them: cancelling stops the retries."""


def _cancellable(request):
    """`request` (an Agent's Deferred) such that cancelling it fails it with CancelledError.

    The Agent reports a request cancelled while connecting or waiting as
    ConnectingCancelledError, DNSLookupError or ResponseNeverReceived, any
    of which would pass for a node outage and be retried.  As
    CancelledError, `addTimeout` turns it into TimeoutError when the
    timeout did it, and anyone else's cancel ends the request.
    """
    def cancel(outer):
        outer.errback(defer.CancelledError())
        request.cancel()

    def passed_on(fire):
        def pass_on(result):
            if not outer.called:        # a cancelled request's own report is dropped
                fire(result)
        return pass_on

    outer = defer.Deferred(cancel)
    request.addCallbacks(passed_on(outer.callback), passed_on(outer.errback))
    return outer


@implementer(IBodyProducer)
class _Body:
    def __init__(self, data: bytes):
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class _BodyReader(protocol.Protocol):
    """Collects a response body into `finished`; closes the connection past `limit`
    bytes, or when `finished` is cancelled (the reply is taking too long)."""

    def __init__(self, limit):
        self.finished = defer.Deferred(self._cancel)
        self.limit = limit
        self.chunks = []
        self.size = 0

    def dataReceived(self, data):
        if self.finished.called:        # over the limit or too late: drop the rest
            return
        self.size += len(data)
        if self.size > self.limit:
            self._stop(_Unavailable(f"a reply over {self.limit:,d} bytes"))
            return
        self.chunks.append(data)

    def _cancel(self, _finished):
        self._stop(defer.CancelledError())

    def _stop(self, reason):
        """Fail `finished` with `reason`, then close: closing may report a lost
        connection at once, which must not take the place of the reason."""
        self.chunks = []
        self.finished.errback(reason)
        if self.transport is not None:
            self.transport.stopProducing()

    def connectionLost(self, reason):
        if self.finished.called:
            return
        if reason.check(error.ConnectionDone, ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(reason)


class Daemon:
    """A JSON-RPC client of one or more nodes (failing over round-robin)."""

    log = Logger()

    def __init__(self, reactor, urls, *, max_in_flight: int = 8, timeout: float = 60.0,
                 max_response_bytes: int = 1 << 30, backoff_start: float = 0.25,
                 backoff_max: float = 4.0, fresh_block_connections: bool = True):
        self.reactor = reactor
        self.urls = list(urls)
        self._index = 0
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = max_in_flight
        self._pool._factory = _QuietClientFactory
        self._agent = Agent(reactor, pool=self._pool)
        # Blocks come over a connection of their own, closed after the reply: some nodes
        # (Bitcoin SV's) stall ~40 ms on each large reply over a kept-alive connection,
        # which cost a real sync 2.5 times its time (bench/realnode_sync.py).
        self.fresh_block_connections = fresh_block_connections
        fresh_pool = HTTPConnectionPool(reactor, persistent=False)
        fresh_pool._factory = _QuietClientFactory
        self._fresh_agent = Agent(reactor, pool=fresh_pool)
        self._in_flight = defer.DeferredSemaphore(max_in_flight)
        self._under_way = set()
        self._next_id = 0
        self.outage = TroubleLog(self.log, reactor)
        """Logs the time no node answers (its reminder_secs is what tests shorten)."""
        self.cookie_trouble = TroubleLog(self.log, reactor)
        """Logs the time the node's cookie file cannot be read or is refused."""
        self._warned = set()
        self.request_count = 0
        """HTTP requests posted to nodes (a batch counts once); for metrics."""
        self.failure_count = 0
        """Requests that found a node unavailable (down, warming up, or answering garbage)."""

    # ---- URLs ------------------------------------------------------------

    @property
    def current_url(self):
        return self.urls[self._index] if self.urls else None

    def set_urls(self, urls):
        """Replace the node list (the admin `daemon_url` command, the demo node)."""
        if not urls:
            raise ValueError("at least one node URL is needed")
        self.urls = list(urls)
        self._index = 0
        self.log.info("node URLs now {urls}", urls=", ".join(map(str, self.urls)))

    def failover(self) -> bool:
        """Move to the next node (the admin `daemon_url` command); False if there is only one."""
        if not self._next_node():
            return False
        self.log.info("failing over to {url}", url=self.current_url)
        return True

    def _next_node(self) -> bool:
        """Move to the next node without a log line: an outage is logged as a whole."""
        if len(self.urls) < 2:
            return False
        self._index = (self._index + 1) % len(self.urls)
        return True

    def close(self):
        """Give up every request under way (each fails with CancelledError), and drop
        the pooled connections (a Deferred).  Later requests are made as usual.

        A request to a node that is down retries until the node is back; at
        shutdown nothing would ever end those retries.
        """
        for d in list(self._under_way):
            d.cancel()
        return self._pool.closeCachedConnections()

    def _track(self, d):
        """`d`, a request's Deferred, kept among those `close` gives up while it is under way."""
        self._under_way.add(d)
        d.addBoth(lambda result: (self._under_way.discard(d), result)[1])
        return d

    # ---- requests --------------------------------------------------------

    def call(self, method: str, *params):
        """A Deferred of `method(*params)`'s result; DaemonError on an RPC error."""
        return defer.ensureDeferred(self._call(method, list(params)))

    async def _call(self, method, params, convert=None):
        """The result of one call, passed through `convert` if given: a result it
        refuses (TypeError or ValueError) is garbage from the node, and retried."""
        body = self._body(method, params)
        return await self._request(body, lambda reply: _checked(
            _single_result(reply, method), convert, method))

    def _body(self, method, params) -> bytes:
        self._next_id += 1
        return orjson.dumps({"jsonrpc": "1.0", "id": self._next_id, "method": method,
                             "params": params})

    def call_once(self, method: str, *params):
        """One attempt at `method` on the current node: no retry, no in-flight slot.

        For long-polls: they wait on the node for long, must not hold one of
        the slots that block fetching needs, and must stop when cancelled
        rather than wait out an outage.  An unreachable node is a DaemonError
        with code UNAVAILABLE.
        """
        return self._track(defer.ensureDeferred(self._call_once(method, list(params))))

    async def _call_once(self, method, params):
        url = self.current_url
        if url is None:
            raise DaemonError(UNAVAILABLE, "no node URL is configured")
        try:
            return _single_result(await self._reply(url, self._body(method, params)), method)
        except _Unavailable as e:
            raise DaemonError(UNAVAILABLE, f"node unavailable: {e}") from None

    def batch(self, method: str, params_list, errors_ok: bool = False, fresh: bool = False):
        """A Deferred of the results of one batched request, in order.

        With `errors_ok`, a failed item is a DaemonError in the list instead
        of failing the whole batch; with `fresh`, the request goes over a new
        connection, closed after the reply.
        """
        return defer.ensureDeferred(self._batch(method, [list(p) for p in params_list],
                                                errors_ok, fresh))

    async def _batch(self, method, params_list, errors_ok, fresh=False, convert=None):
        """The results of one batch, each passed through `convert` (as in `_call`)."""
        if not params_list:
            return []
        first = self._next_id + 1
        self._next_id += len(params_list)
        body = orjson.dumps([{"jsonrpc": "1.0", "id": first + i, "method": method,
                              "params": params} for i, params in enumerate(params_list)])

        def results(reply):
            items = _batch_items(reply, first, len(params_list), method)
            out = []
            for item in items:
                try:
                    out.append(_checked(_result_of(item, method), convert, method))
                except DaemonError as e:
                    if not errors_ok:
                        raise
                    out.append(e)
            return out

        return await self._request(body, results, fresh)

    def _request(self, body: bytes, results, fresh: bool = False):
        """A Deferred of `results(reply)` of the first node to answer the JSON-RPC body.

        `results` raises DaemonError for the node's error answer (which ends
        the request) and _Unavailable for a reply that is no answer (which
        is retried like a dead node).
        """
        return self._track(defer.ensureDeferred(self._retrying(body, results, fresh)))

    async def _retrying(self, body, results, fresh):
        backoff = self.backoff_start
        while True:
            url = self.current_url
            if url is None:
                raise DaemonError(UNAVAILABLE, "no node URL is configured")
            self.request_count += 1
            try:
                answer = results(await self._in_flight.run(self._reply, url, body, fresh))
            except _Unavailable as e:
                self.failure_count += 1
                self.outage.goes_on("node {url} unavailable ({reason}); retrying",
                                    url=url, reason=str(e))
                if self.current_url == url:     # not already moved on by another request
                    self._next_node()
            except DaemonError:
                self._answered(url)
                raise
            else:
                self._answered(url)
                return answer
            await task.deferLater(self.reactor, backoff, lambda: None)
            backoff = min(backoff * 2, self.backoff_max)

    def _answered(self, url):
        self.outage.ended("node {url} answering again after {lasted}", url=url)
        if url.cookie is not None:
            self.cookie_trouble.ended("the node accepts the cookie of {path} again, after "
                                      "{lasted}", path=url.cookie.path)

    async def _reply(self, url, body: bytes, fresh: bool = False):
        """The node's decoded reply to one POST; _Unavailable if it gave none."""
        status, data = await self._post(url, body, fresh)
        if status in (401, 403):
            if url.cookie is not None:
                # bitcoind writes a new cookie at every start: read it again.
                url.cookie.forget()
                reason = f"the node at {url} refused the cookie of {url.cookie.path}"
                self.cookie_trouble.goes_on("{reason}; reading it again", reason=reason)
                raise _Unavailable(reason)
            raise DaemonAuthError(status, f"the node at {url} refused our credentials "
                                          f"(HTTP {status}): check DAEMON_URL's user and "
                                          "password")
        try:
            reply = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise _Unavailable(f"HTTP {status} without a JSON reply") from None
        warming = _warm_up_message(reply)
        if warming is not None:
            raise _Unavailable(f"warming up: {warming}")
        return reply

    async def _post(self, url, body, fresh=False):
        """(HTTP status, body bytes) of one POST; _Unavailable if the node is unreachable."""
        try:
            userinfo = url.userinfo
        except CookieUnreadable as e:       # a node that is starting has not written it yet
            self.cookie_trouble.goes_on("{reason}; trying again", reason=str(e))
            raise _Unavailable(str(e)) from None
        headers = Headers({
            b"Content-Type": [b"application/json"],
            b"Authorization": [b"Basic " + base64.b64encode(userinfo)],
        })
        agent = self._fresh_agent if fresh else self._agent
        try:
            d = _cancellable(agent.request(b"POST", url.endpoint_url, headers, _Body(body)))
            d.addTimeout(self.timeout, self.reactor)
            response = await d
            reader = _BodyReader(self.max_response_bytes)
            response.deliverBody(reader)
            reader.finished.addTimeout(self.timeout, self.reactor)
            data = await reader.finished
        except _TRANSPORT_FAILURES as e:
            raise _Unavailable(_describe(e)) from None
        return response.code, data

    def warn_once(self, key, message, **kwargs):
        if key not in self._warned:
            self._warned.add(key)
            self.log.warn(message, **kwargs)

    # ---- the calls the server makes --------------------------------------

    def height(self):
        """The node's block count (its tip's height)."""
        return defer.ensureDeferred(self._call("getblockcount", [], convert=_height))

    def block_hashes(self, first_height: int, count: int):
        """Display-hex hashes of `count` blocks from `first_height`."""
        return defer.ensureDeferred(self._batch(
            "getblockhash", [[h] for h in range(first_height, first_height + count)],
            False, convert=_block_hash))

    def block_hash(self, height: int):
        """The display-hex hash of the node's block at `height`."""
        return defer.ensureDeferred(self._call("getblockhash", [height], convert=_block_hash))

    def raw_blocks(self, hex_hashes):
        """Raw blocks (bytes) for display-hex hashes, in one batch."""
        return defer.ensureDeferred(self._batch("getblock", [[h, 0] for h in hex_hashes],
                                                False, self.fresh_block_connections,
                                                convert=bytes.fromhex))

    def mempool_hashes(self):
        return self.call("getrawmempool")

    def best_block_hash(self):
        return self.call("getbestblockhash")

    async def _raw_transactions(self, hex_hashes):
        results = await self.batch("getrawtransaction", [[h, 0] for h in hex_hashes],
                                   errors_ok=True)
        out = []
        for result in results:
            if isinstance(result, DaemonError) or not isinstance(result, str):
                out.append(None)
            else:
                try:
                    out.append(bytes.fromhex(result))
                except ValueError:
                    out.append(None)
        return out

    def raw_transactions(self, hex_hashes):
        """Raw transactions for display-hex txids; None for each one the node lacks."""
        return defer.ensureDeferred(self._raw_transactions(hex_hashes))

    def raw_transaction(self, hex_hash: str, verbose: bool = False):
        return self.call("getrawtransaction", hex_hash, 1 if verbose else 0)

    def broadcast(self, raw_hex: str):
        return self.call("sendrawtransaction", raw_hex)

    def submit_package(self, raw_txs):
        """Submit parents and child together (bitcoind 28's `submitpackage`)."""
        return self.call("submitpackage", raw_txs)

    async def _estimatefee(self, blocks, mode):
        params = [blocks] if mode is None else [blocks, mode]
        try:
            result = await self.call("estimatesmartfee", *params)
        except DaemonError as e:
            if e.code != METHOD_NOT_FOUND:
                raise
            self.warn_once("estimatesmartfee", "the node has no estimatesmartfee; "
                                               "fee estimates will be -1")
            return -1
        feerate = result.get("feerate") if isinstance(result, dict) else None
        return feerate if isinstance(feerate, (int, float)) else -1

    def estimatefee(self, blocks: int, mode=None):
        """The node's fee estimate in coin/kvB, or -1 when it has none."""
        return defer.ensureDeferred(self._estimatefee(blocks, mode))

    async def _relayfee(self):
        info = await self.network_info()
        return info.get("relayfee", 0.00001) if isinstance(info, dict) else 0.00001

    def relayfee(self):
        return defer.ensureDeferred(self._relayfee())

    def mempool_info(self):
        return self.call("getmempoolinfo")

    def network_info(self):
        return self.call("getnetworkinfo")

    def blockchain_info(self):
        return self.call("getblockchaininfo")

    async def _check_network(self, coin):
        info = await self.blockchain_info()
        chain = info.get("chain") if isinstance(info, dict) else None
        if chain != coin.DAEMON_CHAIN:
            raise DaemonMismatchError(
                -1, f"the node at {self.current_url} is on chain {chain!r}, but the server is "
                    f"configured for {coin.NAME} {coin.NET} (chain {coin.DAEMON_CHAIN!r})")
        genesis = await self.call("getblockhash", 0)
        if genesis != coin.GENESIS_HASH:
            raise DaemonMismatchError(
                -1, f"the node at {self.current_url} has genesis block {genesis}, not "
                    f"{coin.NAME} {coin.NET}'s {coin.GENESIS_HASH}")

    def check_network(self, coin):
        """Refuse a node on another network than the configured coin's."""
        return defer.ensureDeferred(self._check_network(coin))

    async def _check_txindex(self):
        try:
            indexes = await self.call("getindexinfo")
        except DaemonError as e:
            if e.code != METHOD_NOT_FOUND:
                raise
            # Older nodes (Bitcoin SV among them) lack getindexinfo: ask for a mined
            # transaction instead, which only a node with txindex=1 can find.
            await self._probe_txindex()
            return
        if not isinstance(indexes, dict) or "txindex" not in indexes:
            raise self._no_txindex()

    async def _probe_txindex(self):
        """Fetch block 1's coinbase; refuse the node if it says it has no such transaction."""
        if await self.height() < 1:
            self.warn_once("txindex", "the node has no getindexinfo and no mined block to "
                                      "look up: it cannot say whether it has txindex=1, "
                                      "which blockchain.transaction.get needs")
            return
        block = await self.call("getblock", await self.call("getblockhash", 1), 1)
        txid = block.get("tx", [None])[0] if isinstance(block, dict) else None
        if not isinstance(txid, str):
            raise DaemonError(-32700, "getblock returned no transaction list")
        try:
            await self.raw_transaction(txid)
        except DaemonError as e:
            if e.code == NO_SUCH_TX:
                raise self._no_txindex() from None
            raise

    def _no_txindex(self):
        return DaemonMismatchError(
            -1, f"the node at {self.current_url} runs without a transaction index: "
                "restart bitcoind with txindex=1 (blockchain.transaction.get needs it)")

    def check_txindex(self):
        """Refuse a node without txindex=1, which raw transaction lookups need."""
        return defer.ensureDeferred(self._check_txindex())


def _single_result(reply, method: str):
    if not isinstance(reply, dict):
        raise _Unavailable(f"a reply to {method} that is not a JSON-RPC object")
    return _result_of(reply, method)


def _batch_items(reply, first_id: int, count: int, method: str):
    """The reply objects to ids first_id.. in order; _Unavailable if any is missing."""
    if not isinstance(reply, list) or len(reply) != count:
        raise _Unavailable(f"a batch reply to {count} {method} requests that is not a "
                           f"list of {count} replies")
    by_id = {item["id"]: item for item in reply
             if isinstance(item, dict) and type(item.get("id")) is int}
    items = [by_id.get(first_id + i) for i in range(count)]
    if None in items:
        raise _Unavailable(f"a batch reply to {method} without an answer to each request")
    return items


def _result_of(reply: dict, method: str):
    """The result of one reply object; DaemonError for its error, _Unavailable if neither."""
    err = reply.get("error")
    if err:
        if isinstance(err, dict):
            code = err.get("code")
            raise DaemonError(code if type(code) is int else -1, str(err.get("message", "")))
        raise DaemonError(-1, str(err))
    if "result" not in reply:
        raise _Unavailable(f"a reply to {method} with neither a result nor an error")
    return reply["result"]


def _checked(result, convert, method):
    if convert is None:
        return result
    try:
        return convert(result)
    except (TypeError, ValueError):
        raise _Unavailable(f"a {method} result of the wrong kind") from None


def _height(result) -> int:
    if type(result) is not int or result < 0:
        raise ValueError("not a height")
    return result


def _block_hash(result) -> str:
    if not isinstance(result, str) or len(result) != 64:
        raise ValueError("not a block hash")
    bytes.fromhex(result)
    return result


def _warm_up_message(reply):
    """The node's warming-up message if the reply (or any item of a batch) is -28, else None."""
    items = reply if isinstance(reply, list) else [reply]
    for item in items:
        err = item.get("error") if isinstance(item, dict) else None
        if isinstance(err, dict) and err.get("code") == WARMUP:
            return str(err.get("message", ""))
    return None


def _describe(exc) -> str:
    """A short reason for a log line; Twisted's reprs may quote the URL."""
    if isinstance(exc, ResponseFailed):
        return "connection lost mid-reply"
    if isinstance(exc, (error.TimeoutError, defer.TimeoutError)):
        return "timed out"
    if isinstance(exc, error.ConnectionRefusedError):
        return "connection refused"
    return type(exc).__name__
