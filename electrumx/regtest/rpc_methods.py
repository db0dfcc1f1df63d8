"""bitcoind's JSON-RPC methods, answered from a RegtestNode.

Each public method takes the JSON params and returns a JSON value (or a
Deferred of one), raising NodeError with bitcoind's code and message when
bitcoind would fail.  The shapes follow bitcoind 31 on regtest.
"""

import inspect
import json

from twisted.internet import defer

from electrumx.chain.hashes import hash_to_hex_str
from electrumx.chain.tx import ParseError, Tx, parse_block_txs
from electrumx.coins import BitcoinRegtest
from electrumx.regtest.codes import (RPC_DESERIALIZATION_ERROR, RPC_INVALID_ADDRESS_OR_KEY,
                                     RPC_INVALID_PARAMETER, RPC_MISC_ERROR, RPC_TYPE_ERROR,
                                     RPC_VERIFY_ALREADY_IN_UTXO_SET, RPC_VERIFY_ERROR)
from electrumx.regtest import describe
from electrumx.regtest.node import MISSING_INPUTS, NOT_FOUND_NO_TXINDEX, NodeError

VERSION = 310000
SUBVERSION = "/Satoshi:31.0.0(txelectrumx-regtest)/"
"""Bitcoin Core's user agent, naming this node in the comment Core's -uacomment adds:
servers tell Core from other nodes by the "/Satoshi:" prefix (Fulcrum treats any other
node as Bitcoin Cash, without segwit), and this node answers as Core 31 does."""
PROTOCOL_VERSION = 70016
RELAY_FEE = 0.00001                   # BTC per kvB
DEFAULT_MAX_FEERATE = 0.10            # BTC per kvB, sendrawtransaction's default cap
MAX_MEMPOOL = 300_000_000
MAX_SCRIPT_SIZE = 10_000
OP_RETURN = 0x6a


def int_param(value, name="value"):
    """An integer parameter, or bitcoind's type error (-3)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise NodeError(RPC_TYPE_ERROR,
                        f"JSON value of type {_json_type(value)} for field {name} is "
                        f"not of expected type number")
    return value


def hex_param(value, name, error_code=RPC_INVALID_PARAMETER):
    """Bytes from a hex string parameter, or bitcoind's error."""
    if not isinstance(value, str):
        raise NodeError(RPC_TYPE_ERROR,
                        f"JSON value of type {_json_type(value)} for field {name} is "
                        f"not of expected type string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise NodeError(error_code, f"{name} must be hexadecimal string") from None


def txid_param(value, name="txid"):
    """An internal-order txid from its display hex, or bitcoind's error."""
    if isinstance(value, str) and len(value) != 64:
        raise NodeError(RPC_INVALID_PARAMETER,
                        f"{name} must be of length 64 (not {len(value)}, for '{value}')")
    return hex_param(value, name)[::-1]


def typed_param(value, position, name, kind, optional=False):
    """`value` if it has JSON type `kind` (or is null and `optional`), else the -3 error
    bitcoind 25+ gives an argument of the wrong type."""
    if (value is None and optional) or _json_type(value) == kind:
        return value
    mismatch = {f"Position {position} ({name})":
                f"JSON value of type {_json_type(value)} is not of expected type {kind}"}
    raise NodeError(RPC_TYPE_ERROR, "Wrong type passed:\n" + json.dumps(mismatch, indent=4))


def check_object(obj, expected: dict, allow_null: bool):
    """bitcoind's RPCTypeCheckObj, strict: each key of `expected` {key: JSON type} has
    that type (or is absent, if `allow_null`), and `obj` has no other key."""
    for key, kind in expected.items():
        value = obj.get(key)
        if value is None and not allow_null:
            raise NodeError(RPC_TYPE_ERROR, f"Missing {key}")
        if value is not None and _json_type(value) != kind:
            raise NodeError(RPC_TYPE_ERROR, f"JSON value of type {_json_type(value)} for "
                                            f"field {key} is not of expected type {kind}")
    for key in obj:
        if key not in expected:
            raise NodeError(RPC_TYPE_ERROR, f"Unexpected key {key}")


def amount_param(value):
    """Satoshis from a BTC amount (a number or a numeric string), or bitcoind's -3."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise NodeError(RPC_TYPE_ERROR, "Amount is not a number or string")
    try:
        sats = round(float(value) * 1e8)
    except ValueError:
        raise NodeError(RPC_TYPE_ERROR, "Invalid amount") from None
    if not 0 <= sats <= 21_000_000 * 10 ** 8:
        raise NodeError(RPC_TYPE_ERROR, "Amount out of range")
    return sats


def raw_tx_param(value):
    """Raw transaction bytes from hex, or bitcoind's decode error (-22)."""
    if not isinstance(value, str):
        return hex_param(value, "hexstring")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise NodeError(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None


def decode_tx(raw):
    try:
        return Tx.from_bytes(raw)
    except ParseError:
        raise NodeError(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None


def _json_type(value):
    for kind, name in ((bool, "bool"), (int, "number"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


class BitcoindMethods:
    """The bitcoind RPCs an Electrum server (and a wallet behind it) uses."""

    def __init__(self, node, clock):
        self.node = node
        self.clock = clock
        self.started = clock.seconds()

    # ---- the chain -------------------------------------------------------

    def getblockchaininfo(self):
        node = self.node
        tip = node.header(node.height)
        return {"chain": "regtest", "blocks": node.height, "headers": node.height,
                "bestblockhash": hash_to_hex_str(node.tip_hash),
                "difficulty": describe.REGTEST_DIFFICULTY, "time": tip.timestamp,
                "mediantime": describe.median_time(node, node.height),
                "verificationprogress": 1, "initialblockdownload": False,
                "chainwork": f"{describe.WORK_PER_BLOCK * (node.height + 1):064x}",
                "size_on_disk": sum(map(node.blocks.size, range(node.height + 1))),
                "pruned": False, "warnings": []}

    def getblockcount(self):
        return self.node.height

    def getbestblockhash(self):
        return hash_to_hex_str(self.node.tip_hash)

    def getblockhash(self, height):
        if not 0 <= int_param(height, "height") <= self.node.height:
            raise NodeError(RPC_INVALID_PARAMETER, "Block height out of range")
        return hash_to_hex_str(self.node.hashes[height])

    def getblock(self, blockhash, verbosity=1):
        raw, height = self.node.block_by_hex(blockhash)
        verbosity = int(verbosity) if isinstance(verbosity, bool) else \
            int_param(verbosity, "verbosity")
        if verbosity <= 0:
            return raw.hex()
        return describe.block_dict(self.node, raw, height, verbosity)

    def getblockheader(self, blockhash, verbose=True):
        raw, height = self.node.block_by_hex(blockhash)
        if not verbose:
            return raw[:80].hex()
        return describe.header_dict(self.node, raw, height, len(parse_block_txs(raw)))

    # ---- transactions ----------------------------------------------------

    def getrawtransaction(self, txid, verbose=0, blockhash=None):
        txid = txid_param(txid)
        if blockhash is not None:
            if not self.node.block_hash_arg:
                raise NodeError(RPC_MISC_ERROR, "getrawtransaction \"txid\" ( verbose )")
            raw, height = self.node.tx_in_block_hex(txid, blockhash)
        else:
            raw, height = self.node.find_tx(txid)
            if height is not None and not self.node.txindex:
                raise NodeError(RPC_INVALID_ADDRESS_OR_KEY, NOT_FOUND_NO_TXINDEX)
        if not verbose:
            return raw.hex()
        info = describe.tx_dict(Tx.from_bytes(raw), raw)
        if blockhash is not None:
            info["in_active_chain"] = height >= 0
        if height is not None:
            header = self.node.header(height) if height >= 0 else None
            info.update(blockhash=blockhash or hash_to_hex_str(self.node.hashes[height]),
                        confirmations=self.node.confirmations(height))
            if header is not None:
                info.update(time=header.timestamp, blocktime=header.timestamp)
        return info

    def decoderawtransaction(self, hexstring):
        raw = raw_tx_param(hexstring)
        info = describe.tx_dict(decode_tx(raw), raw)
        del info["hex"]
        return info

    def sendrawtransaction(self, hexstring, maxfeerate=DEFAULT_MAX_FEERATE, maxburnamount=0):
        """bitcoind 25+: refuses an unspendable output (OP_RETURN-led, or a script over
        10,000 bytes) worth more than `maxburnamount` BTC, before anything else."""
        raw = raw_tx_param(hexstring)
        tx = decode_tx(raw)
        burn_cap = amount_param(maxburnamount)
        if any(out.value > burn_cap for out in tx.outputs
               if out.script[:1] == bytes([OP_RETURN]) or len(out.script) > MAX_SCRIPT_SIZE):
            raise NodeError(RPC_VERIFY_ERROR, "Unspendable output exceeds maximum configured "
                                              "by user (maxburnamount)")
        if maxfeerate and tx.txid not in self.node.mempool:
            _tx, fee, _replaced = self.node.check_tx(raw)
            if fee > maxfeerate * 1e8 / 1000 * tx.vsize:
                raise NodeError(RPC_VERIFY_ERROR, "Fee exceeds maximum configured by user (e.g. "
                                                  "-maxtxfee, maxfeerate)")
        return hash_to_hex_str(self.node.send(raw))

    def testmempoolaccept(self, rawtxs, maxfeerate=DEFAULT_MAX_FEERATE):
        """Would the node accept these transactions?  bitcoind 31's answer shapes.

        Several are tested as a package, each as if the ones before it were in
        the mempool; after the first refused, the rest get only their ids
        (bitcoind: "not fully validated").  The mempool is left as it was.
        """
        typed_param(rawtxs, 1, "rawtxs", "array")
        if not 1 <= len(rawtxs) <= 25:
            raise NodeError(RPC_INVALID_PARAMETER,
                            "Array must contain between 1 and 25 transactions.")
        raws = [self._raw_package_tx(raw, n) for n, raw in enumerate(rawtxs)]
        mempool = self.node.mempool
        results, added = [], []
        try:
            for raw in raws:
                tx = decode_tx(raw)
                result = {"txid": tx.txid_hex, "wtxid": hash_to_hex_str(tx.wtxid)}
                results.append(result)
                if len(results) > 1 and not results[-2].get("allowed"):
                    continue
                fee = self._test_accept(tx, raw, maxfeerate, result, in_package=len(raws) > 1)
                if fee is not None and len(raws) > 1:
                    mempool.add(tx, fee, 0.0)
                    added.append(tx.txid)
        finally:
            mempool.evict(added)
        return results

    @staticmethod
    def _raw_package_tx(raw, n):
        """The bytes of the n-th raw transaction, or bitcoind's -22 naming it."""
        if isinstance(raw, str):
            try:
                raw = bytes.fromhex(raw)
                if raw:
                    decode_tx(raw)
                    return raw
            except (ValueError, NodeError):
                pass
        else:
            hex_param(raw, "rawtx")
        raise NodeError(RPC_DESERIALIZATION_ERROR, f"TX decode failed for tx {n}. Make sure "
                                                   f"the tx has at least one input.")

    def _test_accept(self, tx, raw, maxfeerate, result, in_package):
        """Fill `result` with the allowed/refused fields; the fee if allowed, else None."""
        node = self.node
        reason = details = None
        if tx.txid in node.mempool:
            reason = "txn-already-in-mempool"
        else:
            try:
                _tx, fee, replaced = node.check_tx(raw)
            except NodeError as e:
                if e.message == MISSING_INPUTS:
                    reason = "missing-inputs"
                elif e.code == RPC_VERIFY_ALREADY_IN_UTXO_SET:
                    reason = "txn-already-known"
                else:
                    reason, details = e.reason, e.message
            else:
                if replaced and in_package:
                    reason = "bip125-replacement-disallowed"
                elif maxfeerate and fee > maxfeerate * 1e8 / 1000 * tx.vsize:
                    reason = "max-fee-exceeded"
        if reason is not None:
            result.update({"allowed": False, "reject-reason": reason})
            if reason != "missing-inputs":
                result["reject-details"] = details or reason
            return None
        result.update(allowed=True, vsize=tx.vsize, fees={
            "base": describe.btc(fee),
            "effective-feerate": describe.btc(fee * 1000 // tx.vsize),
            "effective-includes": [result["wtxid"]]})
        return fee

    def submitpackage(self, package, maxfeerate=DEFAULT_MAX_FEERATE, maxburnamount=0):
        """Package relay (bitcoind 28+): a child with its parents, accepted tx by tx.

        Unlike bitcoind, fees are not assessed for the package as a whole:
        each transaction must pay its own way, and acceptance stops at the
        first one refused.
        """
        if not isinstance(package, list):
            raise NodeError(RPC_TYPE_ERROR, "Expected type array, got " + _json_type(package))
        if not 1 <= len(package) <= 25:
            raise NodeError(RPC_INVALID_PARAMETER,
                            "Array must contain between 1 and 25 transactions.")
        raws = [raw_tx_param(raw) for raw in package]
        txs = [decode_tx(raw) for raw in raws]
        parents = {tx.txid for tx in txs[:-1]}
        if parents and (not parents <= {txin.prev_hash for txin in txs[-1].inputs} or
                        any(txin.prev_hash in parents for tx in txs[:-1]
                            for txin in tx.inputs)):
            raise NodeError(RPC_VERIFY_ERROR,
                            "package topology disallowed. not child-with-parents or "
                            "parents depend on each other.")
        results = {}
        failed = False
        for tx, raw in zip(txs, raws):
            if failed:
                break
            entry = results[hash_to_hex_str(tx.wtxid)] = {"txid": tx.txid_hex}
            try:
                self.node.send(raw)
            except NodeError as e:
                entry["error"] = e.message
                failed = True
            else:
                entry.update(vsize=tx.vsize,
                             fees={"base": describe.btc(self.node.fee_of(tx.txid))})
        return {"package_msg": "transaction failed" if failed else "success",
                "tx-results": results, "replaced-transactions": []}

    def gettxspendingprevout(self, outputs, options=None, *, mempool_only=None,
                             return_spending_tx=None):
        """The transactions spending `outputs` [{txid, vout}]: bitcoind 31's answer with
        txospenderindex, which also finds spenders confirmed in the active chain.

        Each answer is its request object plus `spendingtxid` (and `spendingtx`
        with return_spending_tx) if spent, and `blockhash` if the spend is
        confirmed.  The options may also be given as named parameters.
        """
        typed_param(outputs, 1, "outputs", "array")
        typed_param(options, 2, "options", "object", optional=True)
        named = {k: v for k, v in (("mempool_only", mempool_only),
                                   ("return_spending_tx", return_spending_tx)) if v is not None}
        options = dict(options or {}, **named)
        if not outputs:
            raise NodeError(RPC_INVALID_PARAMETER, "Invalid parameter, outputs are missing")
        check_object(options, {"mempool_only": "bool", "return_spending_tx": "bool"}, True)
        outpoints = [_outpoint_param(o) for o in outputs]
        answers = []
        for request, outpoint in zip(outputs, outpoints):
            answer = dict(request)
            found = self.node.spender(outpoint, options.get("mempool_only", False))
            if found is not None:
                txid, raw, block_hash = found
                answer["spendingtxid"] = hash_to_hex_str(txid)
                if options.get("return_spending_tx"):
                    answer["spendingtx"] = raw.hex()
                if block_hash is not None:
                    answer["blockhash"] = hash_to_hex_str(block_hash)
            answers.append(answer)
        return answers

    # ---- the mempool -----------------------------------------------------

    def getrawmempool(self, verbose=False, mempool_sequence=False):
        node = self.node
        if not verbose:
            return [hash_to_hex_str(t) for t in node.mempool]
        return {hash_to_hex_str(t): describe.mempool_entry(node, t) for t in node.mempool}

    def getmempoolentry(self, txid):
        txid = txid_param(txid)
        if txid not in self.node.mempool:
            raise NodeError(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
        return describe.mempool_entry(self.node, txid)

    def getmempoolinfo(self):
        pool = self.node.mempool
        vbytes = sum(t.vsize for t in pool.values())
        return {"loaded": True, "size": len(pool), "bytes": vbytes, "usage": 2 * vbytes,
                "total_fee": describe.btc(sum(pool.fees.values())),
                "maxmempool": MAX_MEMPOOL, "mempoolminfee": RELAY_FEE,
                "minrelaytxfee": RELAY_FEE, "incrementalrelayfee": RELAY_FEE,
                "unbroadcastcount": 0, "fullrbf": True}

    def estimatesmartfee(self, conf_target, estimate_mode="conservative"):
        if not 1 <= int_param(conf_target, "conf_target") <= 1008:
            raise NodeError(RPC_INVALID_PARAMETER,
                            "Invalid conf_target, must be between 1 and 1008")
        if str(estimate_mode).lower() not in ("unset", "economical", "conservative"):
            raise NodeError(RPC_INVALID_PARAMETER,
                            "Invalid estimate_mode parameter, must be one of: "
                            "\"unset\", \"economical\", \"conservative\"")
        return {"feerate": round(0.0002 / conf_target + RELAY_FEE, 8), "blocks": conf_target}

    # ---- mining ------------------------------------------------------------

    def generatetoaddress(self, nblocks, address, maxtries=1_000_000):
        try:
            script = BitcoinRegtest.address_to_script(address)
        except (TypeError, ValueError):
            raise NodeError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
        return [hash_to_hex_str(h) for h in self.node.mine(int_param(nblocks, "nblocks"),
                                                           script)]

    def waitfornewblock(self, timeout=0):
        """Long-poll until the tip changes, or `timeout` milliseconds pass; {hash, height}."""
        node = self.node
        d = defer.Deferred()
        node.block_waiters.append(d)
        if int_param(timeout, "timeout") > 0:
            current = {"hash": hash_to_hex_str(node.tip_hash), "height": node.height}
            call = self.clock.callLater(timeout / 1000, lambda: d.called or d.callback(current))
            d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])
        return d

    # ---- the node itself ---------------------------------------------------

    def getnetworkinfo(self):
        return {"version": VERSION, "subversion": SUBVERSION,
                "protocolversion": PROTOCOL_VERSION, "localservices": "0000000000000c09",
                "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
                "localrelay": True, "timeoffset": 0, "networkactive": True,
                "connections": 0, "connections_in": 0, "connections_out": 0,
                "networks": [], "relayfee": RELAY_FEE, "incrementalfee": RELAY_FEE,
                "localaddresses": [], "warnings": []}

    def getzmqnotifications(self):
        return self.node.announcer.notifications()

    def getindexinfo(self, index_name=None):
        synced = {"synced": True, "best_block_height": self.node.height}
        info = {"txindex": synced} if self.node.txindex else {}
        info["txospenderindex"] = dict(synced)
        if index_name is not None:
            return {k: v for k, v in info.items() if k == index_name}
        return info

    def uptime(self):
        return int(self.clock.seconds() - self.started)


def _outpoint_param(request):
    """The 36-byte outpoint of a gettxspendingprevout request {txid, vout}, with bitcoind's
    errors: -1 for a non-object or a non-integral vout, -3 for keys, -8 for values."""
    if not isinstance(request, dict):
        raise NodeError(RPC_MISC_ERROR, f"JSON value of type {_json_type(request)} is not of "
                                        f"expected type object")
    check_object(request, {"txid": "string", "vout": "number"}, False)
    txid = txid_param(request["txid"])
    vout = request["vout"]
    if not isinstance(vout, int) or not -2 ** 31 <= vout < 2 ** 31:
        raise NodeError(RPC_MISC_ERROR, "JSON integer out of range")
    if vout < 0:
        raise NodeError(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
    return txid + vout.to_bytes(4, "little")


def usage(name, method) -> str:
    """A one-line usage text, as bitcoind's help gives: `getblockhash height`."""
    params = inspect.signature(method).parameters.values()
    return " ".join([name] + [p.name if p.default is inspect.Parameter.empty
                              else f"( {p.name} )" for p in params])

