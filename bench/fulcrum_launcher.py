"""Fulcrum against the built-in regtest node, configured like our server and ElectrumX.

Fulcrum (a C++ Electrum server, built by bench/setup_fulcrum.sh) reads a
config file, not ElectrumX's environment, so compare.py's settings are
translated into one, written to the work directory:

- CACHE_MB -> db_mem (MiB).  ElectrumX's CACHE_MB is the memory it may fill
  with unflushed UTXOs and history before writing them to the database;
  Fulcrum has no such cache (it writes each block) and its one memory knob is
  db_mem, RocksDB's block cache and write buffers.  Both are "how much memory
  the server may spend on its database", so they get the same number.
- DAEMON_POLL_INTERVAL_BLOCKS -> polltime (seconds; Fulcrum polls blocks and
  mempool together, and refuses less than 0.5 s).
- MAX_SESSIONS and the cost limits -> max_clients_per_ip = 0 (no per-IP cap:
  every benchmark client comes from 127.0.0.1, which Fulcrum's default
  subnets_to_exclude_from_per_ip_limits already exempts from its default of
  12; said here so that no default decides it), max_history and max_buffer
  at their maxima (so no history
  is withheld or cut short as "too large", as neither other server does at
  these settings), bitcoind_timeout = REQUEST_TIMEOUT.
- Peering and announcing off, no SSL, no admin or stats port; TCP on
  127.0.0.1 only.

Fulcrum logs to stdout.  It listens only once it is first up to date, so its
"listening" line is both the caught-up and the ready signal.
"""

import os
import subprocess
from pathlib import Path

READY = "Service started, listening for connections on"
"""Fulcrum's log line once it serves TCP (written after its first catch-up)."""
CAUGHT_UP = ", up-to-date"
"""In Fulcrum's "Block height N, up-to-date" line."""
DB_NAME = "fulcrum-db"
MIN_POLL_MS = 500
MAX_HISTORY = 25_000_000          # the largest value Fulcrum accepts
MAX_BUFFER = 100_000_000          # likewise
SETTINGS_NOTE = ("Fulcrum ran with db_mem = CACHE_MB, polltime = the poll interval, "
                 "max_clients_per_ip = 0, max_history and max_buffer at their maxima "
                 "(bench/fulcrum_launcher.py).")


def fulcrum_binary(binary=None) -> Path:
    """The Fulcrum executable: `binary`, else $FULCRUM_BIN; SystemExit if neither is one."""
    binary = binary or os.environ.get("FULCRUM_BIN")
    if not binary:
        raise SystemExit("no Fulcrum binary: set FULCRUM_BIN (see bench/setup_fulcrum.sh)")
    path = Path(binary).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise SystemExit(f"FULCRUM_BIN {binary} is not an executable file")
    return path


def fulcrum_config(work: Path, node_port: int, tcp: str, CACHE_MB: str,
                   DAEMON_POLL_INTERVAL_BLOCKS: str, REQUEST_TIMEOUT: str = "60",
                   **_others) -> str:
    """The text of Fulcrum's config file for compare.py's settings (see the module's
    docstring for the mapping).  `tcp` is host:port; settings Fulcrum has no
    counterpart for (LOG_LEVEL, the ElectrumX cost limits...) are ignored."""
    poll_ms = int(DAEMON_POLL_INTERVAL_BLOCKS)
    if poll_ms < MIN_POLL_MS:
        raise SystemExit(f"Fulcrum's polltime is at least {MIN_POLL_MS} ms, not {poll_ms}")
    settings = {
        "datadir": work / DB_NAME,
        "bitcoind": f"127.0.0.1:{node_port}",
        "rpcuser": "regtest",
        "rpcpassword": "regtest",
        "tcp": tcp,
        "polltime": f"{poll_ms / 1000:g}",
        "db_mem": f"{float(CACHE_MB):.1f}",
        "bitcoind_timeout": f"{float(REQUEST_TIMEOUT):.1f}",
        "max_clients_per_ip": 0,
        "max_history": MAX_HISTORY,
        "max_buffer": MAX_BUFFER,
        "peering": "false",
        "announce": "false",
        "debug": "false",
    }
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


def start_fulcrum(work: Path, node_port: int, SERVICES: str, binary=None, **settings):
    """Fulcrum against the node, serving SERVICES ("tcp://host:port"), with compare.py's
    settings: (process, log path).  Not waited for."""
    executable = fulcrum_binary(binary)
    if not SERVICES.startswith("tcp://"):
        raise ValueError(f"Fulcrum runs here with one TCP service, not {SERVICES!r}")
    (work / DB_NAME).mkdir(exist_ok=True)
    config = work / "fulcrum.conf"
    config.write_text(fulcrum_config(work, node_port, SERVICES[len("tcp://"):], **settings))
    log = work / "fulcrum.log"
    proc = subprocess.Popen([str(executable), str(config)], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, cwd=work)
    return proc, log
