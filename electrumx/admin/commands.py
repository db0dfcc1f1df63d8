"""The admin RPC's commands: what an operator may ask of, or do to, a live server.

Each public method of `AdminCommands` is one command; its arguments are the
JSON-RPC params and its result is plain JSON.  A command that cannot be
done raises `AdminError` with a message meant for the operator.  The set
follows ElectrumX's `electrumx_rpc` (getinfo, sessions, groups, peers,
add_peer, disconnect, log, daemon_url, reorg, query, stop) with Fulcrum's
ban, unban, banned, kick and loglevel, and cache, compact and flush.
"""

import os
import time

from twisted.internet import threads
from twisted.logger import LogLevel

from electrumx import SERVER_VERSION
from electrumx.admin.backup import Backup, BackupError
from electrumx.admin.process import directory_bytes, resident_memory_bytes
from electrumx.chain.hashes import hash_to_hex_str, hashX_from_script
from electrumx.config.daemon_url import DaemonURLError, parse_daemon_urls
from electrumx.index.db import ChainError
from electrumx.logs import Logger, set_log_level
from electrumx.protocol.bans import address_in, parse_network
from electrumx.protocol.version import version_string

_log = Logger()

QUERY_LIMIT = 1000
"""Most history entries and UTXOs `query` lists per item unless asked for more."""


class AdminError(Exception):
    """A command that cannot be done; the message is for the operator."""


class AdminCommands:
    """The commands, over the live service objects of one `Controller`."""

    def __init__(self, controller):
        self.controller = controller
        self.started = time.time()
        self._backup = None

    @classmethod
    def names(cls):
        """Every command name, for `help` and the dispatcher."""
        return sorted(name for name, value in vars(cls).items()
                      if not name.startswith("_") and callable(value) and name != "names")

    def help(self):
        """The commands this server knows."""
        return self.names()

    # ---- looking ---------------------------------------------------------

    def getinfo(self):
        """The server at a glance."""
        c = self.controller
        sessions, stats = c.sessions, c.sessions.stats
        peers = self._peers(required=False)
        return {
            "version": SERVER_VERSION,
            "coin": c.settings.coin.NAME,
            "network": c.settings.coin.NET,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started),
            "rss_mb": round(resident_memory_bytes() / 1048576, 1),
            "daemon": c.daemon.current_url.redacted() if c.daemon.current_url else None,
            "daemon_height": c.indexer.prefetcher.daemon_height,
            "daemon_requests": c.daemon.request_count,
            "daemon_failures": c.daemon.failure_count,
            "tx_lookup": (c.daemon.tx_lookup.describe() if c.daemon.tx_lookup
                          else "not probed yet"),
            "db_height": c.db.height,
            "db_tip": hash_to_hex_str(c.db.tip),
            "db_tx_count": c.db.state.tx_count,
            "applied_height": (c.indexer.processor.height if c.indexer.processor is not None
                               else c.db.height),
            "caught_up": c.indexer.is_caught_up,
            "daemon_behind": c.indexer.node_behind,
            "mempool_txs": c.mempool.tx_count,
            "mempool_vsize": c.mempool.total_vsize,
            "sessions": len(sessions.sessions),
            "sessions_opened": stats.sessions_opened,
            "groups": len(sessions.groups.groups),
            "subscriptions": c.subscriptions.subscription_count,
            "requests": sum(stats.requests.values()),
            "errors": sum(stats.errors.values()),
            "bytes_received": stats.bytes_received,
            "bytes_sent": stats.bytes_sent,
            "peers": len(peers.admin_rows()) if peers is not None else 0,
            "banned": len(sessions.bans.networks),
        }

    def sessions(self):
        """One row per client session."""
        now = self.controller.reactor.seconds()
        rows = []
        for session in self.controller.sessions.sessions.values():
            state = session.subscription_state
            rows.append({
                "id": session.session_id,
                "address": session.remote_address,
                "client": session.client_name,
                "protocol": (version_string(session.protocol_version)
                             if session.protocol_version else None),
                "group": session.group.name if session.group is not None else None,
                "cost": round(session.cost.current(), 1),
                "extra_cost": round(session.extra_cost(), 1),
                "requests": session.requests,
                "errors": session.errors,
                "subs": state.count if state is not None else 0,
                "bytes_received": session.bytes_received,
                "bytes_sent": session.bytes_sent,
                "age": round(now - session.started),
                "idle": round(now - session.last_activity),
                "logging": session.log_requests,
            })
        return sorted(rows, key=lambda row: row["id"])

    def groups(self):
        """One row per session group (subnet), with the cost it retains."""
        return [{"name": group.name,
                 "sessions": sorted(s.session_id for s in group.sessions),
                 "cost": round(group.cost(), 1),
                 "retained_cost": round(group.retained_cost, 1)}
                for group in sorted(self.controller.sessions.groups.groups.values(),
                                    key=lambda g: g.name)]

    def peers(self):
        """The peer servers known to peer discovery."""
        peers = self._peers(required=False)
        return peers.admin_rows() if peers is not None else []

    def query(self, items, limit=QUERY_LIMIT):
        """History, UTXOs and balance of addresses or hex scripts.

        Amounts are in the coin's smallest units (sat); each item names the
        coin's unit (`unit`, e.g. BTC) and how many sat make one.
        """
        if isinstance(items, str):
            items = [items]
        limit = _positive_int(limit, "limit")
        reader = self.controller.reader
        return [self._query_one(reader, item, limit) for item in items]

    def _query_one(self, reader, item, limit):
        coin = self.controller.settings.coin
        script = self._script_of(item)
        hashX = hashX_from_script(script)
        history = reader.confirmed_history(hashX, limit + 1)
        mempool = reader.mempool_history(hashX)
        utxos = reader.utxos(hashX)
        confirmed, unconfirmed = reader.balance(hashX)
        return {
            "item": item,
            "script": script.hex(),
            "history": [{"txid": hash_to_hex_str(txid), "height": height}
                        for txid, height in history[:limit]]
                       + [{"txid": hash_to_hex_str(txid), "height": height, "fee": fee}
                          for txid, height, fee in mempool],
            "history_truncated": len(history) > limit,
            "utxos": [{"txid": hash_to_hex_str(txid), "out": idx, "height": height,
                       "value": value} for txid, idx, height, value in utxos[:limit]],
            "utxos_truncated": len(utxos) > limit,
            "balance": {"confirmed": confirmed, "unconfirmed": unconfirmed},
            "unit": coin.SHORTNAME,
            "sat_per_unit": coin.COIN_UNITS,
        }

    def _script_of(self, item):
        coin = self.controller.settings.coin
        if not isinstance(item, str):
            raise AdminError(f"not an address or script: {item!r}")
        try:
            return coin.address_to_script(item)
        except ValueError:
            pass
        try:
            return bytes.fromhex(item)
        except ValueError:
            raise AdminError(f"{item!r} is neither a {coin.NAME} {coin.NET} address nor a "
                             "hex script") from None

    def cache(self):
        """Sizes and hit rates of the server's caches."""
        c = self.controller
        stats = c.reader.cache_stats()
        for entry in stats.values():
            looked = entry["hits"] + entry["misses"]
            entry["hit_rate"] = round(entry["hits"] / looked, 3) if looked else None
        processor = c.indexer.processor
        stats["unflushed"] = {"bytes": processor.cache_bytes() if processor else 0,
                              "limit_bytes": c.indexer.cache_bytes}
        return stats

    # ---- sessions --------------------------------------------------------

    def disconnect(self, targets):
        """Close sessions by id, or every session of a group (by its name)."""
        ids, names = _ids_and_names(targets)
        closed = self.controller.sessions.close_sessions(
            lambda s: s.session_id in ids or (s.group is not None and s.group.name in names))
        return {"closed": closed}

    def kick(self, targets):
        """Close every session from the given addresses or subnets (no ban)."""
        networks = [self._checked(parse_network, text) for text in _as_list(targets)]
        closed = self.controller.sessions.close_sessions(
            lambda s: address_in(s.remote_address, networks))
        return {"closed": closed}

    def ban(self, targets):
        """Refuse addresses or subnets from now on, and close their sessions."""
        closed = []
        for text in _as_list(targets):
            closed += self._checked(self.controller.sessions.ban, text)
        return {"banned": self.controller.sessions.bans.listing(), "closed": closed}

    def unban(self, targets):
        """Lift bans; each target must be banned exactly as given."""
        bans = self.controller.sessions.bans
        missing = [t for t in _as_list(targets) if not self._checked(bans.unban, t)]
        if missing:
            raise AdminError(f"not banned: {', '.join(missing)}")
        return {"banned": bans.listing()}

    def banned(self):
        """The banned addresses and subnets."""
        return self.controller.sessions.bans.listing()

    def log(self, targets):
        """Toggle logging of every request of the given sessions (by id)."""
        ids, _names = _ids_and_names(targets)
        sessions = self.controller.sessions.sessions
        unknown = sorted(ids - sessions.keys())
        if unknown:
            raise AdminError(f"no session {', '.join(map(str, unknown))}")
        result = {}
        for session_id in sorted(ids):
            session = sessions[session_id]
            session.log_requests = not session.log_requests
            result[str(session_id)] = session.log_requests
        return result

    # ---- the node and the index -------------------------------------------

    def daemon_url(self, urls=None):
        """Replace the node URLs (comma-separated), or with none given move to the next."""
        daemon = self.controller.daemon
        if urls:
            text = ",".join(_as_list(urls))
            try:
                settings = self.controller.settings
                daemon.set_urls(parse_daemon_urls(text, settings.coin.RPC_PORT,
                                                  settings.daemon_cookie_file))
            except (DaemonURLError, ValueError) as e:
                raise AdminError(str(e)) from None
        elif not daemon.failover():
            raise AdminError("only one node URL is configured: nothing to rotate to")
        return {"current": daemon.current_url.redacted(),
                "urls": [url.redacted() for url in daemon.urls]}

    def reorg(self, count=3):
        """Test aid: back out the top `count` blocks; they are fetched again from the node."""
        count = _positive_int(count, "count")
        try:
            height = self.controller.indexer.force_reorg(count)
        except ChainError as e:
            raise AdminError(str(e)) from None
        return {"height": height}

    def flush(self):
        """Write the indexer's unflushed changes now."""
        indexer = self.controller.indexer
        if indexer.processor is None:
            raise AdminError("the index is not open yet")
        secs = indexer.flush()
        return {"height": self.controller.db.height, "seconds": round(secs, 3)}

    def compact(self):
        """Compact the whole LevelDB now (a Deferred).

        LevelDB is safe to use from several threads, so compaction runs in a
        thread: on a large index it takes minutes, and the server keeps
        serving meanwhile.
        """
        db = self.controller.db
        directory = db.path
        before = directory_bytes(directory)
        started = time.monotonic()
        d = threads.deferToThread(db.compact)
        d.addCallback(lambda _: {"seconds": round(time.monotonic() - started, 3),
                                 "bytes_before": before,
                                 "bytes_after": directory_bytes(directory)})
        return d

    def backup(self, directory):
        """Copy the index, as of a flush made now, into `directory` (a Deferred).

        The server keeps serving while it copies; see `electrumx.admin.backup`.
        """
        c = self.controller
        if c.indexer.processor is None:
            raise AdminError("the index is not open yet")
        if self._backup is not None:
            raise AdminError(f"a backup into {self._backup.directory} is already running")
        if not isinstance(directory, str) or not os.path.isabs(directory):
            raise AdminError(f"backup needs an absolute directory path, not {directory!r}")
        backup = Backup(c.db, directory, c.indexer.flush)
        try:
            d = backup.run()
        except (BackupError, OSError) as e:
            raise AdminError(str(e)) from None
        self._backup = backup
        _log.info("backing up the index into {directory}", directory=backup.directory)

        def done(result):
            self._backup = None
            return result

        def failed(failure):
            failure.trap(BackupError, OSError)
            raise AdminError(str(failure.value))

        d.addBoth(done)
        d.addErrback(failed)
        return d

    # ---- the process -------------------------------------------------------

    def loglevel(self, level):
        """Show log events at `level` (debug, info, warn, error, critical) and above."""
        try:
            LogLevel.levelWithName(level)
        except Exception:
            raise AdminError(f"unknown log level {level!r}: use debug, info, warn, error "
                             "or critical") from None
        set_log_level(level)
        _log.info("log level now {name}", name=level)
        return {"level": level}

    def stop(self):
        """Shut down cleanly: the index is flushed, the process exits."""
        reactor = self.controller.reactor
        _log.info("stopping at the admin's request")
        reactor.callLater(0.1, reactor.stop)
        return "stopping"

    def add_peer(self, real_name):
        """Add a peer by its real name ("host t50001 s50002"); it is verified first."""
        peers = self._peers(required=True)
        return self._checked(peers.add_from_admin, real_name)

    # ---- helpers -------------------------------------------------------------

    def _peers(self, required):
        peers = getattr(self.controller, "peers", None)
        if peers is None and required:
            raise AdminError("peer discovery is not running (PEER_DISCOVERY=off?)")
        return peers

    @staticmethod
    def _checked(function, text):
        try:
            return function(text)
        except ValueError as e:
            raise AdminError(str(e)) from None


def _as_list(value):
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _ids_and_names(targets):
    """Session ids (numbers) and group names (anything else) from a target list."""
    ids, names = set(), set()
    for target in _as_list(targets):
        if target.isdigit():
            ids.add(int(target))
        else:
            names.add(target)
    return ids, names


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or \
            not str(value).isdigit() or int(value) < 1:
        raise AdminError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)
