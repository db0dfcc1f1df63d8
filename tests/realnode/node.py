"""A real Bitcoin SV `bitcoind` in regtest as a child process, and a blocking RPC client.

The node binds RPC to 127.0.0.1 only, with P2P listening off, a datadir of the
test's own and a password of its own.  Every wait is bounded, and a node that
exits early fails the test with the end of its log.
"""

import base64
import http.client
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from tests.fixtures.host import free_port
from tests.realnode import install_node

# CI sets this so that a missing node fails the tests instead of skipping them.
REQUIRE_ENV = "ELECTRUMX_REQUIRE_BSV_NODE"
START_TIMEOUT = 60


def find_bitcoind():
    """The node's path; None if it is not installed."""
    path = install_node.bitcoind_path()
    return path if path.is_file() and os.access(path, os.X_OK) else None


class NodeRPCError(Exception):
    def __init__(self, method, error):
        super().__init__(method, error)
        self.code = error.get("code")
        self.message = error.get("message")


class BSVNode:
    """One bitcoind in regtest: start, stop (cleanly or by SIGKILL), restart on its datadir."""

    def __init__(self, bitcoind: Path, datadir: Path, name="node", txindex=False):
        self.bitcoind = bitcoind
        self.datadir = datadir
        self.name = name
        self.rpc_port = free_port()
        self.user = "electrumx"
        self.password = secrets.token_hex(16)
        self.txindex = txindex
        """Off by default, as the server needs none (this node finds transactions with an
        unspent output anyway, and takes no block hash: the server uses getblock)."""
        self.proc = None
        self._conn = None
        datadir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """The DAEMON_URL of this node."""
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.rpc_port}/"

    def argv(self):
        return [str(self.bitcoind), "-regtest", f"-datadir={self.datadir}", "-server=1",
                "-listen=0", "-connect=0", "-dnsseed=0", "-rpcbind=127.0.0.1",
                "-rpcallowip=127.0.0.1", f"-rpcport={self.rpc_port}",
                f"-rpcuser={self.user}", f"-rpcpassword={self.password}",
                f"-txindex={int(self.txindex)}",
                "-printtoconsole=0", "-excessiveblocksize=10000000000",
                "-maxstackmemoryusageconsensus=0", "-minminingtxfee=0.00000500",
                # The wallet chains unconfirmed spends deeper than the defaults allow.
                "-limitancestorcount=100000", "-limitdescendantcount=100000",
                "-rpcworkqueue=64", "-rpcservertimeout=120"]

    def start(self, timeout=START_TIMEOUT):
        log = open(self.datadir / f"{self.name}.stdout", "ab")
        # A session of its own, so a signal meant for pytest never reaches it.
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n"
                                     f"{self.log_tail()}")
            try:
                self.call("getblockcount")
                return self
            except (OSError, http.client.HTTPException):
                pass
            except NodeRPCError as e:
                if e.code != -28:                # still warming up
                    raise
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not answering within {timeout} s:\n"
                                     f"{self.log_tail()}")
            time.sleep(0.1)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=60):
        """A clean shutdown through the `stop` RPC, as an operator would."""
        if not self.running():
            return
        try:
            self.call("stop")
        except (OSError, http.client.HTTPException, NodeRPCError):
            self.proc.send_signal(signal.SIGTERM)
        self._wait(timeout)

    def kill(self):
        """SIGKILL: the node vanishes mid-answer."""
        if self.running():
            self.proc.kill()
            self._wait(30)

    def _wait(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self._drop_connection()

    def log_tail(self, lines=30) -> str:
        log = self.datadir / "regtest" / "bitcoind.log"
        text = ""
        for path in (self.datadir / f"{self.name}.stdout", log):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return text

    # ---- JSON-RPC (blocking, one kept-alive connection) -------------------

    def _drop_connection(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post(self, payload):
        body = json.dumps(payload).encode()
        auth = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.rpc_port, timeout=120)
            try:
                self._conn.request("POST", "/", body, {"Authorization": "Basic " + auth,
                                                       "Content-Type": "application/json"})
                response = self._conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self._drop_connection()
                if attempt == 2:
                    raise
                continue
            if response.status in (401, 403):
                raise AssertionError(f"{self.name} refused our credentials")
            return json.loads(data)

    def call(self, method, *params):
        reply = self._post({"id": 1, "method": method, "params": list(params)})
        if reply.get("error"):
            raise NodeRPCError(method, reply["error"])
        return reply["result"]

    def batch(self, method, params_list):
        """The results of one batched request, in order; the first error raises."""
        if not params_list:
            return []
        replies = self._post([{"id": i, "method": method, "params": list(p)}
                              for i, p in enumerate(params_list)])
        replies.sort(key=lambda r: r["id"])
        for reply in replies:
            if reply.get("error"):
                raise NodeRPCError(method, reply["error"])
        return [r["result"] for r in replies]
