"""bitcoind's JSON-RPC interface over HTTP, answered from a RegtestNode.

Basic auth, batches, bitcoind's error codes and HTTP statuses (500 for an
error in a single request, 404 for an unknown method, 200 for batches), plus
`regtest_*` control methods and failure modes for tests: refuse connections,
warm-up (-28), HTTP 500, slow answers, corrupt JSON.
"""

import base64
import hmac
import random

import orjson
from twisted.internet import defer, task
from electrumx.logs import Logger
from twisted.web import resource, server

from electrumx.chain.block import Header
from electrumx.chain.hashes import hash_to_hex_str, hex_str_to_hash
from electrumx.chain.tx import parse_block_txs
from electrumx.coins import BitcoinRegtest
from electrumx.regtest.node import NodeError

VERSION = 290000
SUBVERSION = "/txelectrumx-regtest:0.1.0/"


class NodeRPC:
    """The RPC methods, each taking JSON params and returning a JSON value."""

    def __init__(self, node, clock):
        self.node = node
        self.clock = clock
        self.started = clock.seconds()

    # ---- bitcoind methods ------------------------------------------------

    def getblockchaininfo(self):
        node = self.node
        return {"chain": "regtest", "blocks": node.height, "headers": node.height,
                "bestblockhash": hash_to_hex_str(node.tip_hash), "difficulty": 4.6e-10,
                "mediantime": Header(node.blocks[node.height]).timestamp,
                "verificationprogress": 1, "initialblockdownload": False,
                "pruned": False, "warnings": ""}

    def getblockcount(self):
        return self.node.height

    def getbestblockhash(self):
        return hash_to_hex_str(self.node.tip_hash)

    def getblockhash(self, height):
        if not isinstance(height, int) or not 0 <= height <= self.node.height:
            raise NodeError(-8, "Block height out of range")
        return hash_to_hex_str(self.node.hashes[height])

    def getblock(self, blockhash, verbosity=1):
        raw, height = self.node.height_of_hex(blockhash)
        if verbosity in (0, False):
            return raw.hex()
        info = self._header_info(raw, height)
        info["tx"] = [hash_to_hex_str(t[0]) for t in parse_block_txs(raw)]
        info["nTx"] = len(info["tx"])
        info["size"] = len(raw)
        return info

    def getblockheader(self, blockhash, verbose=True):
        raw, height = self.node.height_of_hex(blockhash)
        if not verbose:
            return raw[:80].hex()
        return self._header_info(raw, height)

    def _header_info(self, raw, height):
        info = Header(raw).to_dict()
        info["height"] = height
        info["confirmations"] = self.node.confirmations(height)
        if 0 <= height < self.node.height:
            info["nextblockhash"] = hash_to_hex_str(self.node.hashes[height + 1])
        if height == 0:
            del info["previousblockhash"]
        return info

    def getrawtransaction(self, txid, verbose=0, blockhash=None):
        raw, height = self.node.find_tx(_txid(txid))
        if not verbose:
            return raw.hex()
        tx = BitcoinRegtest.deserialize_tx(raw)
        info = {
            "txid": tx.txid_hex, "hash": hash_to_hex_str(tx.wtxid), "version": tx.version,
            "size": tx.size, "vsize": tx.vsize, "weight": tx.weight, "locktime": tx.locktime,
            "vin": [{"coinbase": i.script.hex(), "sequence": i.sequence} if tx.is_coinbase else
                    {"txid": hash_to_hex_str(i.prev_hash), "vout": i.prev_idx,
                     "scriptSig": {"hex": i.script.hex()},
                     "txinwitness": [w.hex() for w in i.witness], "sequence": i.sequence}
                    for i in tx.inputs],
            "vout": [{"value": o.value / 1e8, "n": n, "scriptPubKey": {"hex": o.script.hex()}}
                     for n, o in enumerate(tx.outputs)],
            "hex": raw.hex(),
        }
        if height is not None:
            block = self.node.blocks[height]
            info.update(blockhash=hash_to_hex_str(self.node.hashes[height]),
                        confirmations=self.node.confirmations(height),
                        time=Header(block).timestamp, blocktime=Header(block).timestamp)
        return info

    def getrawmempool(self, verbose=False):
        node = self.node
        if not verbose:
            return [hash_to_hex_str(t) for t in node.mempool]
        return {hash_to_hex_str(txid): {
            "vsize": tx.vsize, "weight": tx.weight, "fees": {"base": node.fee_of(txid) / 1e8},
            "depends": [hash_to_hex_str(i.prev_hash) for i in tx.inputs
                        if i.prev_hash in node.mempool]}
            for txid, tx in node.mempool.items()}

    def getmempoolinfo(self):
        txs = self.node.mempool.values()
        return {"loaded": True, "size": len(txs), "bytes": sum(t.vsize for t in txs),
                "mempoolminfee": 0.00001, "minrelaytxfee": 0.00001,
                "incrementalrelayfee": 0.00001}

    def getnetworkinfo(self):
        return {"version": VERSION, "subversion": SUBVERSION, "protocolversion": 70016,
                "relayfee": 0.00001, "incrementalfee": 0.00001, "networkactive": True,
                "connections": 0, "warnings": ""}

    def estimatesmartfee(self, conf_target, estimate_mode="conservative"):
        if not isinstance(conf_target, int) or not 1 <= conf_target <= 1008:
            raise NodeError(-8, "Invalid conf_target, must be between 1 and 1008")
        return {"feerate": round(0.0002 / conf_target + 0.00001, 8), "blocks": conf_target}

    def sendrawtransaction(self, hexstring, maxfeerate=None):
        return hash_to_hex_str(self.node.send(_hex(hexstring)))

    def testmempoolaccept(self, rawtxs, maxfeerate=None):
        results = []
        for raw in rawtxs:
            try:
                tx, fee, _conflicts = self.node.check_tx(_hex(raw))
                results.append({"txid": tx.txid_hex, "wtxid": hash_to_hex_str(tx.wtxid),
                                "allowed": True, "vsize": tx.vsize,
                                "fees": {"base": fee / 1e8}})
            except NodeError as e:
                results.append({"allowed": False, "reject-reason": e.message})
        return results

    def generatetoaddress(self, nblocks, address, maxtries=None):
        try:
            script = BitcoinRegtest.address_to_script(address)
        except ValueError:
            raise NodeError(-5, "Invalid address") from None
        return [hash_to_hex_str(h) for h in self.node.mine(nblocks, script)]

    def getzmqnotifications(self):
        return []

    def getindexinfo(self):
        return {"txindex": {"synced": True, "best_block_height": self.node.height}}

    def uptime(self):
        return int(self.clock.seconds() - self.started)

    def help(self, command=None):
        return "\n".join(sorted(n for n in dir(self) if not n.startswith("_")))

    def waitfornewblock(self, timeout=0):
        """Long-poll until the tip changes (or `timeout` ms pass)."""
        d = defer.Deferred()
        self.node.block_waiters.append(d)
        current = {"hash": hash_to_hex_str(self.node.tip_hash), "height": self.node.height}
        if timeout:
            call = self.clock.callLater(timeout / 1000, lambda: d.called or d.callback(current))
            d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    # ---- control methods -------------------------------------------------

    def regtest_reveal(self, height):
        return self.node.reveal(height)

    def regtest_mine(self, count=1):
        return [hash_to_hex_str(h) for h in self.node.mine(count)]

    def regtest_reorg(self, depth, new_blocks=None, rawtxs=()):
        return self.node.reorg(depth, new_blocks, [_hex(r) for r in rawtxs])

    def regtest_churn(self, count, seed=0):
        """Add `count` random valid mempool transactions (some in unconfirmed chains)."""
        return [hash_to_hex_str(t) for t in
                self.node.add_random_transactions(count, random.Random(seed))]

    def regtest_drop(self, txid):
        self.node.drop_from_mempool(_txid(txid))
        return True

    def regtest_status(self):
        return {"height": self.node.height, "generated": len(self.node.blocks) - 1,
                "mempool": len(self.node.mempool)}


def _txid(text):
    if not isinstance(text, str) or len(text) != 64:
        raise NodeError(-8, "txid must be of length 64")
    try:
        return hex_str_to_hash(text)
    except ValueError:
        raise NodeError(-8, "txid must be hexadecimal string") from None


def _hex(text):
    try:
        return bytes.fromhex(text)
    except (TypeError, ValueError):
        raise NodeError(-22, "TX decode failed") from None


class RPCResource(resource.Resource):
    """The HTTP side: auth, batches, status codes, failure modes."""

    isLeaf = True
    log = Logger()

    def __init__(self, rpc: NodeRPC, user: str, password: str, clock):
        super().__init__()
        self.rpc = rpc
        self.clock = clock
        self._auth = b"Basic " + base64.b64encode(f"{user}:{password}".encode())
        self.failure = None          # None, "warmup", "http500", "corrupt", "slow"
        self.slow_secs = 0.5

    def render_POST(self, request):
        if not hmac.compare_digest(request.getHeader(b"authorization") or b"", self._auth):
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Basic realm="jsonrpc"')
            return b""
        body = request.content.read()
        d = defer.ensureDeferred(self._answer(body))
        d.addCallback(self._finish, request)
        d.addErrback(lambda f: (self.log.failure("rpc", f), self._finish((500, b""),
                                                                          request)))
        return server.NOT_DONE_YET

    @staticmethod
    def _finish(result, request):
        status, payload = result
        if request._disconnected:
            return
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.write(payload)
        request.finish()

    async def _answer(self, body):
        if self.failure == "http500":
            return 500, b"<html>Internal Server Error</html>"
        if self.failure == "corrupt":
            return 200, b'{"result": [1, 2, "trunc'
        if self.failure == "slow":
            await task.deferLater(self.clock, self.slow_secs, lambda: None)
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 500, _reply(None, None, {"code": -32700, "message": "Parse error"})
        if isinstance(request, list):
            replies = [await self._one(item) for item in request]
            return 200, b"[" + b",".join(r for _status, r in replies) + b"]"
        return await self._one(request)

    async def _one(self, request):
        if not isinstance(request, dict):
            return 500, _reply(None, None, {"code": -32600, "message": "Invalid Request"})
        rid = request.get("id")
        if self.failure == "warmup":
            return 500, _reply(rid, None, {"code": -28, "message": "Loading block index..."})
        method = request.get("method")
        params = request.get("params") or []
        handler = getattr(self.rpc, method, None) if isinstance(method, str) and \
            not method.startswith("_") else None
        if handler is None:
            return 404, _reply(rid, None, {"code": -32601, "message": "Method not found"})
        try:
            result = handler(**params) if isinstance(params, dict) else handler(*params)
            if isinstance(result, defer.Deferred):
                result = await result
        except NodeError as e:
            return 500, _reply(rid, None, {"code": e.code, "message": e.message})
        except TypeError as e:
            return 500, _reply(rid, None, {"code": -1, "message": str(e)})
        return 200, _reply(rid, result, None)


def _reply(rid, result, error):
    return orjson.dumps({"result": result, "error": error, "id": rid})
