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
What a reply means is read by `node_replies`; one POST is carried by `node_http`.
"""

import functools
from typing import NamedTuple

import orjson
from twisted.internet import defer, task
from twisted.web.client import Agent, HTTPConnectionPool
from zope.interface import implementer

from electrumx.config.daemon_url import CookieUnreadable
from electrumx.index import node_http
from electrumx.index.node_replies import (METHOD_NOT_FOUND, MISC_ERROR, PARSE_ERROR,
                                          NodeUnavailable, as_block_hash, as_height,
                                          batch_items, checked, result_of, single_result,
                                          warm_up_message)
from electrumx.index.trouble_log import TroubleLog
from electrumx.interfaces import DaemonError, INodeClient
from electrumx.logs import Logger

class TxLookup(NamedTuple):
    """How the node finds a confirmed transaction (`Daemon.probe_tx_lookup`)."""

    txindex: bool | None
    """The node keeps a transaction index (txindex=1); None: it cannot say."""
    block_hash_arg: bool | None
    """getrawtransaction takes a block hash (None: not known yet, no block to ask)."""

    def describe(self) -> str:
        """The mode, for the operator (getinfo and a log line at start-up)."""
        if self.block_hash_arg is not False:
            index = "with" if self.txindex else "without" if self.txindex is False else \
                "with or without"
            return (f"getrawtransaction with the block hash from our index ({index} the "
                    "node's txindex)")
        if self.txindex:
            return "the node's txindex"
        getblock = "getblock with the transaction's position from our index"
        if self.txindex is False:
            return f"{getblock} (no txindex, no block hash argument)"
        return (f"getrawtransaction, then {getblock} if the node cannot find it (the node "
                "cannot say whether it has a txindex, and takes no block hash)")


UNAVAILABLE = -1
"""Our code for a node that could not be reached: `call_once` fails with it instead of
retrying, and every call with no node URL configured."""


class DaemonAuthError(DaemonError):
    """The node refused our credentials; retrying cannot help."""


class DaemonMismatchError(DaemonError):
    """The node serves another network or chain than the configured coin."""


def _node_call(coroutine_function):
    """`coroutine_function`, a Daemon method, made to return a Deferred that `close` gives up.

    Callers chain on the Deferred and cancel it; cancelling it cancels what
    the coroutine awaits (a request, a retry's wait), which ends the call.
    """
    @functools.wraps(coroutine_function)
    def deferred(self, *args, **kwargs):
        coroutine = coroutine_function(self, *args, **kwargs)
        return self._track(defer.Deferred.fromCoroutine(coroutine))
    return deferred


@implementer(INodeClient)
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
        self._agent = Agent(reactor, pool=self._pool)
        # Blocks come over a connection of their own, closed after the reply: some nodes
        # (Bitcoin SV's) stall ~40 ms on each large reply over a kept-alive connection,
        # which cost a real sync 2.5 times its time (bench/realnode_sync.py).
        self.fresh_block_connections = fresh_block_connections
        self._fresh_agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        self._in_flight = defer.DeferredSemaphore(max_in_flight)
        self._under_way: set[defer.Deferred] = set()
        self._next_id = 0
        self.outage = TroubleLog(self.log, reactor)
        """Logs the time no node answers (its reminder_secs is what tests shorten)."""
        self.cookie_trouble = TroubleLog(self.log, reactor)
        """Logs the time the node's cookie file cannot be read or is refused."""
        self._warned: set[str] = set()
        self.request_count = 0
        """HTTP requests posted to nodes (a batch counts once); for metrics."""
        self.failure_count = 0
        """Requests that found a node unavailable (down, warming up, or answering garbage)."""
        self.tx_lookup: TxLookup | None = None
        """How the node finds confirmed transactions, once `probe_tx_lookup` has asked."""

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
        """Give up every call under way (each fails with CancelledError), and drop
        the pooled connections (a Deferred).  Later requests are made as usual.

        A request to a node that is down retries until the node is back; at
        shutdown nothing would ever end those retries.
        """
        for d in list(self._under_way):
            d.cancel()
        return self._pool.closeCachedConnections()

    def _track(self, d):
        """`d`, a call's Deferred, kept among those `close` gives up while it is under way."""
        self._under_way.add(d)
        d.addBoth(lambda result: (self._under_way.discard(d), result)[1])
        return d

    # ---- requests --------------------------------------------------------

    @_node_call
    async def call(self, method: str, *params, convert=None):
        """`method(*params)`'s result; DaemonError on an RPC error.

        The result is passed through `convert` if given: a result it refuses
        (TypeError or ValueError) is garbage from the node, and retried.
        """
        body = self._body(method, list(params))
        return await self._request(body, lambda reply: checked(
            single_result(reply, method), convert, method))

    def _body(self, method, params) -> bytes:
        self._next_id += 1
        return orjson.dumps({"jsonrpc": "1.0", "id": self._next_id, "method": method,
                             "params": params})

    @_node_call
    async def call_once(self, method: str, *params):
        """One attempt at `method` on the current node: no retry, no in-flight slot.

        For long-polls: they wait on the node for long, must not hold one of
        the slots that block fetching needs, and must stop when cancelled
        rather than wait out an outage.  An unreachable node is a DaemonError
        with code UNAVAILABLE.
        """
        url = self.current_url
        if url is None:
            raise DaemonError(UNAVAILABLE, "no node URL is configured")
        try:
            return single_result(await self._reply(url, self._body(method, list(params))),
                                 method)
        except NodeUnavailable as e:
            raise DaemonError(UNAVAILABLE, f"node unavailable: {e}") from None

    @_node_call
    async def batch(self, method: str, params_list, errors_ok: bool = False,
                    fresh: bool = False, convert=None):
        """The results of one batched request, in order, each passed through `convert`
        (as in `call`).

        With `errors_ok`, a failed item is a DaemonError in the list instead
        of failing the whole batch; with `fresh`, the request goes over a new
        connection, closed after the reply.
        """
        if not params_list:
            return []
        first = self._next_id + 1
        self._next_id += len(params_list)
        body = orjson.dumps([{"jsonrpc": "1.0", "id": first + i, "method": method,
                              "params": list(params)} for i, params in enumerate(params_list)])

        def results(reply):
            items = batch_items(reply, first, len(params_list), method)
            out = []
            for item in items:
                try:
                    out.append(checked(result_of(item, method), convert, method))
                except DaemonError as e:
                    if not errors_ok:
                        raise
                    out.append(e)
            return out

        return await self._request(body, results, fresh)

    async def _request(self, body: bytes, results, fresh: bool = False):
        """`results(reply)` of the first node to answer the JSON-RPC body.

        `results` raises DaemonError for the node's error answer (which ends
        the request) and NodeUnavailable for a reply that is no answer (which
        is retried like a dead node).
        """
        backoff = self.backoff_start
        while True:
            url = self.current_url
            if url is None:
                raise DaemonError(UNAVAILABLE, "no node URL is configured")
            self.request_count += 1
            try:
                answer = results(await self._in_flight.run(self._reply, url, body, fresh))
            except NodeUnavailable as e:
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
        """The node's decoded reply to one POST; NodeUnavailable if it gave none."""
        try:
            userinfo = url.userinfo
        except CookieUnreadable as e:       # a node that is starting has not written it yet
            self.cookie_trouble.goes_on("{reason}; trying again", reason=str(e))
            raise NodeUnavailable(str(e)) from None
        status, data = await node_http.post(
            self._fresh_agent if fresh else self._agent, self.reactor, url.endpoint_url,
            userinfo, body, timeout=self.timeout, limit=self.max_response_bytes)
        if status in (401, 403):
            if url.cookie is not None:
                # bitcoind writes a new cookie at every start: read it again.
                url.cookie.forget()
                reason = f"the node at {url} refused the cookie of {url.cookie.path}"
                self.cookie_trouble.goes_on("{reason}; reading it again", reason=reason)
                raise NodeUnavailable(reason)
            raise DaemonAuthError(status, f"the node at {url} refused our credentials "
                                          f"(HTTP {status}): check DAEMON_URL's user and "
                                          "password")
        try:
            reply = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise NodeUnavailable(f"HTTP {status} without a JSON reply") from None
        warming = warm_up_message(reply)
        if warming is not None:
            raise NodeUnavailable(f"warming up: {warming}")
        return reply

    def warn_once(self, key, message, **kwargs):
        if key not in self._warned:
            self._warned.add(key)
            self.log.warn(message, **kwargs)

    # ---- the calls the server makes --------------------------------------

    def height(self):
        """The node's block count (its tip's height)."""
        return self.call("getblockcount", convert=as_height)

    def block_hashes(self, first_height: int, count: int):
        """Display-hex hashes of `count` blocks from `first_height`."""
        return self.batch("getblockhash", [[h] for h in range(first_height, first_height + count)],
                          convert=as_block_hash)

    def block_hash(self, height: int):
        """The display-hex hash of the node's block at `height`."""
        return self.call("getblockhash", height, convert=as_block_hash)

    def raw_blocks(self, hex_hashes):
        """Raw blocks (bytes) for display-hex hashes, in one batch."""
        return self.batch("getblock", [[h, 0] for h in hex_hashes],
                          fresh=self.fresh_block_connections, convert=bytes.fromhex)

    def mempool_hashes(self):
        return self.call("getrawmempool")

    def best_block_hash(self):
        return self.call("getbestblockhash")

    @_node_call
    async def raw_transactions(self, hex_hashes):
        """Raw transactions for display-hex txids; None for each one the node lacks."""
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

    def raw_transaction(self, hex_hash: str, verbose: bool = False, block_hash=None):
        """One transaction (hex, or the verbose dict); with `block_hash` (display hex)
        the node looks in that block, which needs no txindex."""
        params = [hex_hash, 1 if verbose else 0]
        if block_hash is not None:
            params.append(block_hash)
        return self.call("getrawtransaction", *params)

    def decode_transaction(self, raw_hex: str):
        """The node's `decoderawtransaction` dict of a raw hex transaction."""
        return self.call("decoderawtransaction", raw_hex)

    def broadcast(self, raw_hex: str):
        return self.call("sendrawtransaction", raw_hex)

    def submit_package(self, raw_txs):
        """Submit parents and child together (bitcoind 28's `submitpackage`)."""
        return self.call("submitpackage", raw_txs)

    def test_mempool_accept(self, raw_txs):
        """Whether the node would accept raw hex transactions (`testmempoolaccept`),
        without relaying them: its result list, one dict per transaction."""
        return self.call("testmempoolaccept", raw_txs)

    @_node_call
    async def estimatefee(self, blocks: int, mode=None):
        """The node's fee estimate in coin/kvB, or -1 when it has none."""
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

    @_node_call
    async def relayfee(self):
        """The node's minimum relay fee in coin/kvB (bitcoind's default if it says none)."""
        info = await self.network_info()
        return info.get("relayfee", 0.00001) if isinstance(info, dict) else 0.00001

    def mempool_info(self):
        return self.call("getmempoolinfo")

    def network_info(self):
        return self.call("getnetworkinfo")

    def blockchain_info(self):
        return self.call("getblockchaininfo")

    @_node_call
    async def check_network(self, coin):
        """Refuse a node on another network than the configured coin's."""
        info = await self.blockchain_info()
        chain = info.get("chain") if isinstance(info, dict) else None
        if chain != coin.DAEMON_CHAIN:
            raise DaemonMismatchError(
                MISC_ERROR, f"the node at {self.current_url} is on chain {chain!r}, but the "
                            f"server is configured for {coin.NAME} {coin.NET} (chain "
                            f"{coin.DAEMON_CHAIN!r})")
        genesis = await self.call("getblockhash", 0)
        if genesis != coin.GENESIS_HASH:
            raise DaemonMismatchError(
                MISC_ERROR, f"the node at {self.current_url} has genesis block {genesis}, not "
                            f"{coin.NAME} {coin.NET}'s {coin.GENESIS_HASH}")

    @_node_call
    async def probe_tx_lookup(self):
        """How this node finds a confirmed transaction: a `TxLookup`, also kept as
        `tx_lookup`.  Never refuses the node: without txindex, the index gives the
        block of each confirmed transaction.

        `txindex` comes from getindexinfo; a node without it (Bitcoin SV) cannot
        say, and asking it for a mined transaction would not tell either (old
        nodes find one with an unspent output in their UTXO set, txindex or
        not), so it stays None.  `block_hash_arg` comes from asking for block 1's
        coinbase with its block hash (older nodes refuse the third argument);
        with no mined block it stays None, and is asked again when a confirmed
        transaction is wanted.
        """
        txindex = None
        try:
            indexes = await self.call("getindexinfo")
        except DaemonError as e:
            if e.code != METHOD_NOT_FOUND:
                raise
        else:
            txindex = isinstance(indexes, dict) and "txindex" in indexes
        block_hash_arg = None
        if await self.height() >= 1:
            block_hash = await self.block_hash(1)
            block = await self.call("getblock", block_hash, 1)
            txid = block.get("tx", [None])[0] if isinstance(block, dict) else None
            if not isinstance(txid, str):
                raise DaemonError(PARSE_ERROR, "getblock returned no transaction list")
            try:
                await self.raw_transaction(txid, block_hash=block_hash)
                block_hash_arg = True
            except DaemonError:
                block_hash_arg = False
        self.tx_lookup = TxLookup(txindex, block_hash_arg)
        return self.tx_lookup
