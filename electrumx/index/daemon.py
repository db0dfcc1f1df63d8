"""The node client: JSON-RPC over HTTP to bitcoind, batched, with retries and failover.

It uses Twisted's own HTTP client (`Agent` over a persistent connection pool):
txJSON-RPC cannot batch, loses the node's error text, opens a connection per
call and breaks basic auth for long passwords (see README, design notes).

What it does with each kind of failure:

* the node is warming up (-28), refuses connections, times out, or answers
  HTTP 5xx without a JSON-RPC body: retry with exponential backoff, moving
  round-robin to the next DAEMON_URL, logging once per outage and once on
  recovery;
* HTTP 401/403: `DaemonAuthError`, never retried (the credentials are wrong);
* a JSON-RPC error: `DaemonError(code, message)` for the caller;
* malformed or oversized replies: `DaemonError`, never a crash.

Passwords never reach a log line or an exception: URLs are shown redacted.
"""

import base64

import orjson
from twisted.internet import defer, error, protocol, task
from electrumx.logs import Logger
from twisted.web.client import Agent, HTTPConnectionPool, ResponseFailed
from twisted.web.client import _HTTP11ClientFactory
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

WARMUP = -28
METHOD_NOT_FOUND = -32601
NO_SUCH_TX = -5
UNAVAILABLE = -1
"""Our code for a node that could not be reached (bitcoind never sends it)."""


class DaemonError(Exception):
    """The node answered with an error, or with something that is not an answer."""

    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return f"{self.message} (code {self.code})"


class DaemonAuthError(DaemonError):
    """The node refused our credentials; retrying cannot help."""


class DaemonMismatchError(DaemonError):
    """The node serves another network or chain than the configured coin."""


class _QuietClientFactory(_HTTP11ClientFactory):
    """The pool's connection factory without a log line per connection."""

    noisy = False


class _Unavailable(Exception):
    """A failure worth retrying on this or the next node."""


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
    """Collects a response body, aborting the connection past `limit` bytes."""

    def __init__(self, finished, limit):
        self.finished = finished
        self.limit = limit
        self.chunks = []
        self.size = 0

    def dataReceived(self, data):
        self.size += len(data)
        if self.size > self.limit:
            self.chunks = []
            self.transport.stopProducing()
            if not self.finished.called:
                self.finished.errback(DaemonError(
                    -32700, f"the node's reply is larger than {self.limit:,d} bytes"))
            return
        self.chunks.append(data)

    def connectionLost(self, reason):
        if self.finished.called:
            return
        if reason.check(error.ConnectionDone) or reason.check(
                *_complete_body_reasons()):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(reason)


def _complete_body_reasons():
    from twisted.web.client import ResponseDone
    from twisted.web.http import PotentialDataLoss
    return (ResponseDone, PotentialDataLoss)


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
        self._next_id = 0
        self._outage = None
        self._warming = False
        self._warned = set()
        self.request_count = 0
        """HTTP requests posted to nodes (a batch counts once); for metrics."""
        self.failure_count = 0
        """Requests that found a node unavailable (refused, timed out, HTTP 5xx)."""

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
        """Move to the next node; False if there is only one."""
        if len(self.urls) < 2:
            return False
        self._index = (self._index + 1) % len(self.urls)
        self.log.info("failing over to {url}", url=self.current_url)
        return True

    def close(self):
        """Drop pooled connections (a Deferred)."""
        return self._pool.closeCachedConnections()

    # ---- requests --------------------------------------------------------

    def call(self, method: str, *params):
        """A Deferred of `method(*params)`'s result; DaemonError on an RPC error."""
        return defer.ensureDeferred(self._call(method, list(params)))

    async def _call(self, method, params):
        self._next_id += 1
        body = orjson.dumps({"jsonrpc": "1.0", "id": self._next_id, "method": method,
                             "params": params})
        reply = await self._request(body)
        if not isinstance(reply, dict):
            raise DaemonError(-32700, f"malformed reply to {method}")
        return _result_of(reply, method)

    def call_once(self, method: str, *params):
        """One attempt at `method` on the current node: no retry, no in-flight slot.

        For long-polls: they wait on the node for long, must not hold one of
        the slots that block fetching needs, and must stop when cancelled
        rather than wait out an outage.  An unreachable node is a DaemonError
        with code UNAVAILABLE.
        """
        return defer.ensureDeferred(self._call_once(method, list(params)))

    async def _call_once(self, method, params):
        url = self.current_url
        if url is None:
            raise DaemonError(UNAVAILABLE, "no node URL is configured")
        self._next_id += 1
        body = orjson.dumps({"jsonrpc": "1.0", "id": self._next_id, "method": method,
                             "params": params})
        try:
            status, data = await self._post(url, body)
            reply = self._decode(url, status, data)
        except _Unavailable as e:
            raise DaemonError(UNAVAILABLE, f"node unavailable: {e}") from None
        if not isinstance(reply, dict):
            raise DaemonError(-32700, f"malformed reply to {method}")
        return _result_of(reply, method)

    def batch(self, method: str, params_list, errors_ok: bool = False, fresh: bool = False):
        """A Deferred of the results of one batched request, in order.

        With `errors_ok`, a failed item is a DaemonError in the list instead
        of failing the whole batch; with `fresh`, the request goes over a new
        connection, closed after the reply.
        """
        return defer.ensureDeferred(self._batch(method, [list(p) for p in params_list],
                                                errors_ok, fresh))

    async def _batch(self, method, params_list, errors_ok, fresh=False):
        if not params_list:
            return []
        first = self._next_id + 1
        self._next_id += len(params_list)
        body = orjson.dumps([{"jsonrpc": "1.0", "id": first + i, "method": method,
                              "params": params} for i, params in enumerate(params_list)])
        reply = await self._request(body, fresh)
        if not isinstance(reply, list) or len(reply) != len(params_list):
            raise DaemonError(-32700, f"malformed batch reply to {method}")
        by_id = {}
        for item in reply:
            if not isinstance(item, dict) or "id" not in item:
                raise DaemonError(-32700, f"malformed batch reply to {method}")
            by_id[item["id"]] = item
        results = []
        for i in range(len(params_list)):
            item = by_id.get(first + i)
            if item is None:
                raise DaemonError(-32700, f"batch reply to {method} lacks an answer")
            try:
                results.append(_result_of(item, method))
            except DaemonError as e:
                if not errors_ok:
                    raise
                results.append(e)
        return results

    async def _request(self, body: bytes, fresh: bool = False):
        """POST a JSON-RPC body until some node answers it; return the decoded reply."""
        backoff = self.backoff_start
        while True:
            url = self.current_url
            if url is None:
                raise DaemonError(-1, "no node URL is configured")
            self.request_count += 1
            try:
                status, data = await self._in_flight.run(self._post, url, body, fresh)
                reply = self._decode(url, status, data)
            except _Unavailable as e:
                self.failure_count += 1
                self._note_outage(url, str(e))
                if self.current_url == url:     # not already moved on by another request
                    self.failover()
            else:
                if not _is_warming_up(reply):
                    self._note_recovery()
                    return reply
                if not self._warming:
                    self._warming = True
                    self.log.info("the node at {url} is warming up; waiting", url=url)
            await task.deferLater(self.reactor, backoff, lambda: None)
            backoff = min(backoff * 2, self.backoff_max)

    async def _post(self, url, body, fresh=False):
        headers = Headers({
            b"Content-Type": [b"application/json"],
            b"Authorization": [b"Basic " + base64.b64encode(url.userinfo)],
        })
        try:
            agent = self._fresh_agent if fresh else self._agent
            d = agent.request(b"POST", url.endpoint_url, headers, _Body(body))
            d.addTimeout(self.timeout, self.reactor)
            response = await d
            finished = defer.Deferred()
            response.deliverBody(_BodyReader(finished, self.max_response_bytes))
            finished.addTimeout(self.timeout, self.reactor)
            data = await finished
        except DaemonError:
            raise
        except (error.ConnectError, error.ConnectionLost, error.TimeoutError,
                defer.TimeoutError, defer.CancelledError, ResponseFailed,
                error.DNSLookupError) as e:
            raise _Unavailable(_describe(e)) from None
        except Exception as e:       # any other transport failure is an outage too
            raise _Unavailable(_describe(e)) from None
        return response.code, data

    def _decode(self, url, status, data):
        if status in (401, 403):
            raise DaemonAuthError(status, f"the node at {url} refused our credentials "
                                          f"(HTTP {status}): check DAEMON_URL's user and "
                                          "password")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            if status >= 500:
                raise _Unavailable(f"HTTP {status} without a JSON-RPC reply") from None
            raise DaemonError(-32700, f"the node at {url} sent malformed JSON "
                                      f"(HTTP {status})") from None

    def _note_outage(self, url, reason):
        if self._outage is None:
            self._outage = url
            self.log.warn("node {url} unavailable ({reason}); retrying", url=url,
                          reason=reason)

    def _note_recovery(self):
        if self._outage is not None or self._warming:
            self.log.info("node {url} is answering again", url=self.current_url)
        self._outage = None
        self._warming = False

    def warn_once(self, key, message, **kwargs):
        if key not in self._warned:
            self._warned.add(key)
            self.log.warn(message, **kwargs)

    # ---- the calls the server makes --------------------------------------

    def height(self):
        return self.call("getblockcount")

    def block_hashes(self, first_height: int, count: int):
        """Display-hex hashes of `count` blocks from `first_height`."""
        return self.batch("getblockhash", [[h] for h in range(first_height,
                                                               first_height + count)])

    async def _raw_blocks(self, hex_hashes):
        blocks = await self.batch("getblock", [[h, 0] for h in hex_hashes],
                                  fresh=self.fresh_block_connections)
        try:
            return [bytes.fromhex(b) for b in blocks]
        except (TypeError, ValueError):
            raise DaemonError(-32700, "getblock returned something that is not hex") from None

    def raw_blocks(self, hex_hashes):
        """Raw blocks (bytes) for display-hex hashes, in one batch."""
        return defer.ensureDeferred(self._raw_blocks(hex_hashes))

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
        return info.get("relayfee", 0.00001)

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


def _result_of(reply: dict, method: str):
    err = reply.get("error")
    if err:
        if isinstance(err, dict):
            raise DaemonError(err.get("code", -1), str(err.get("message", "")))
        raise DaemonError(-1, str(err))
    if "result" not in reply:
        raise DaemonError(-32700, f"reply to {method} has no result")
    return reply["result"]


def _is_warming_up(reply) -> bool:
    items = reply if isinstance(reply, list) else [reply]
    return any(isinstance(item, dict) and isinstance(item.get("error"), dict)
               and item["error"].get("code") == WARMUP for item in items)


def _describe(exc) -> str:
    """A short reason for a log line; Twisted's reprs may quote the URL."""
    if isinstance(exc, ResponseFailed):
        return "connection lost mid-reply"
    if isinstance(exc, (error.TimeoutError, defer.TimeoutError, defer.CancelledError)):
        return "timed out"
    if isinstance(exc, error.ConnectionRefusedError):
        return "connection refused"
    return type(exc).__name__
