"""What the real node says every script holds, read back from the node itself.

The node decodes every block (`getblock` verbosity 2) and mempool transaction
(`getrawtransaction` verbose); from that alone this builds, for each output
script, the Electrum answers a correct server must give: history, balance and
UTXOs.  `check_against_wallet` then cross-checks that model with the node's
wallet (`listunspent`, `listtransactions`), so a mistake in the model itself
cannot pass unnoticed.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

COIN = 100_000_000
CHUNK = 50


def sats(amount) -> int:
    return round(amount * COIN)


def scripthash(script_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(script_hex)).digest()[::-1].hex()


def indexed(script_hex: str) -> bool:
    """Bitcoin SV leaves out only OP_FALSE OP_RETURN outputs."""
    return not script_hex.startswith("006a")


@dataclass
class Coin:
    script: str
    value: int
    height: int          # 0 in the mempool
    coinbase: bool
    address: str = None


@dataclass
class NodeView:
    """Per script hash: history [(txid, height)], UTXOs {(txid, n): Coin}, mempool fees."""

    tip: int
    tip_hash: str
    history: dict = field(default_factory=lambda: defaultdict(list))
    utxos: dict = field(default_factory=lambda: defaultdict(dict))
    fees: dict = field(default_factory=dict)
    confirmed: dict = field(default_factory=dict)      # script hash -> balance at the tip
    scripts: dict = field(default_factory=dict)        # script hash -> script hex
    addresses: dict = field(default_factory=dict)      # address -> script hash
    outpoints: dict = field(default_factory=dict)
    """(txid, n) -> [script hex, protocol 1.7's outpoint status dict], every output."""

    def balance(self, sh):
        """Electrum's: confirmed is the chain's alone; unconfirmed, what the mempool changes."""
        total = sum(c.value for c in self.utxos.get(sh, {}).values())
        confirmed = self.confirmed.get(sh, 0)
        return {"confirmed": confirmed, "unconfirmed": total - confirmed}

    def electrum_history(self, sh):
        """get_history's answer: confirmed in chain order, then the mempool (order aside)."""
        out = []
        for txid, height in self.history.get(sh, ()):
            entry = {"tx_hash": txid, "height": height}
            if height <= 0:
                entry["fee"] = self.fees[txid]
            out.append(entry)
        return out

    def outpoint_status(self, txid, n):
        """blockchain.outpoint.get_status's answer: {} for an output never indexed."""
        return self.outpoints[(txid, n)][1]

    def electrum_utxos(self, sh):
        return sorted(({"tx_hash": txid, "tx_pos": n, "height": c.height, "value": c.value}
                       for (txid, n), c in self.utxos.get(sh, {}).items()),
                      key=lambda u: (u["height"] <= 0, u["height"], u["tx_hash"], u["tx_pos"]))


def read_node(node) -> NodeView:
    """The node's chain and mempool, as the Electrum answers they imply."""
    tip = node.call("getblockcount")
    hashes = node.batch("getblockhash", [(h,) for h in range(tip + 1)])
    view = NodeView(tip, hashes[-1])
    outputs = {}                                # (txid, n) -> (script hash, Coin)
    for start in range(0, len(hashes), CHUNK):
        for height, block in enumerate(node.batch("getblock", [(h, 2) for h in
                                                  hashes[start:start + CHUNK]]), start):
            for tx in block["tx"]:
                _apply(view, outputs, tx, height, height == 0)
    view.confirmed = {sh: sum(c.value for c in coins.values())
                      for sh, coins in view.utxos.items()}
    mempool = node.call("getrawmempool")
    txs = {tx["txid"]: tx for tx in node.batch("getrawtransaction", [(t, 1) for t in mempool])}
    # Parents first, so that each input finds the output it spends.
    done = set()

    def visit(txid):
        if txid in done or txid not in txs:
            return
        done.add(txid)
        tx = txs[txid]
        for vin in tx["vin"]:
            visit(vin.get("txid"))
        unconfirmed_parent = any(vin.get("txid") in txs for vin in tx["vin"])
        _apply(view, outputs, tx, -1 if unconfirmed_parent else 0, False)
    for txid in sorted(txs):
        visit(txid)
    return view


def _apply(view, outputs, tx, height, genesis):
    txid = tx["txid"]
    touched = []
    value_in = 0
    for vin in tx["vin"]:
        if "coinbase" in vin:
            continue
        sh, coin = outputs.pop((vin["txid"], vin["vout"]))
        value_in += coin.value
        if sh is not None:
            view.outpoints[(vin["txid"], vin["vout"])][1].update(
                spender_txhash=txid, spender_height=height)
            del view.utxos[sh][(vin["txid"], vin["vout"])]
            touched.append(sh)
    value_out = 0
    coinbase = "coinbase" in tx["vin"][0]
    for out in tx["vout"]:
        script = out["scriptPubKey"]["hex"]
        value = sats(out["value"])
        value_out += value
        sh = scripthash(script) if indexed(script) and not genesis else None
        address = (out["scriptPubKey"].get("addresses") or [None])[0]
        coin = Coin(script, value, max(height, 0), coinbase, address)
        outputs[(txid, out["n"])] = (sh, coin)
        view.outpoints[(txid, out["n"])] = [script, {} if sh is None else
                                            {"funder_height": height}]
        if sh is not None:
            view.utxos[sh][(txid, out["n"])] = coin
            view.scripts[sh] = script
            if address:
                view.addresses[address] = sh
            touched.append(sh)
    if height <= 0 and not genesis:
        view.fees[txid] = value_in - value_out
    for sh in dict.fromkeys(touched):
        view.history[sh].append((txid, height))


def check_against_wallet(view, node, maturity=101):
    """The model agrees with the node's wallet about its coins and transactions."""
    wallet_coins = {(u["txid"], u["vout"]): (u["address"], sats(u["amount"]))
                    for u in node.call("listunspent", 0, 9_999_999)}
    model_coins = {}
    for sh, coins in view.utxos.items():
        for outpoint, coin in coins.items():
            mature = not coin.coinbase or view.tip - coin.height + 1 >= maturity
            if coin.address and mature:
                model_coins[outpoint] = (coin.address, coin.value)
    # Every wallet coin is in the model; the model's others are not the wallet's.
    assert wallet_coins.items() <= model_coins.items()
    missing = model_coins.keys() - wallet_coins.keys()
    mine = node.batch("validateaddress", [(model_coins[o][0],) for o in missing])
    unlisted = [(o, view.utxos[view.addresses[model_coins[o][0]]][o])
                for o, info in zip(missing, mine) if info.get("ismine")]
    assert not unlisted
    listed = node.call("listtransactions", "*", 1_000_000, 0, True)
    for entry in listed:
        if entry["category"] in ("receive", "generate", "immature") and "address" in entry:
            sh = view.addresses[entry["address"]]
            assert entry["txid"] in {txid for txid, _h in view.history[sh]}, entry
    return len(wallet_coins), len(listed)
