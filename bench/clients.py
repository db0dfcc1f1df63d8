"""Blocking clients the benchmarks share: the regtest node's JSON-RPC and an Electrum
session on loopback (for checks and a few hundred timed requests, not for load)."""

import base64
import json
import socket
import urllib.error
import urllib.request


class NodeRPC:
    """A blocking JSON-RPC client for the regtest node (batches included)."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/"
        self.auth = "Basic " + base64.b64encode(b"regtest:regtest").decode()

    def _post(self, payload):
        request = urllib.request.Request(self.url, json.dumps(payload).encode(),
                                         {"Authorization": self.auth,
                                          "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as error:      # bitcoind: RPC errors come as HTTP 500
            return json.loads(error.read())

    def call(self, method, *params):
        reply = self._post({"id": 1, "method": method, "params": list(params)})
        if reply.get("error"):
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def batch(self, method, params_list, chunk=2000):
        results = []
        for first in range(0, len(params_list), chunk):
            part = params_list[first:first + chunk]
            replies = self._post([{"id": n, "method": method, "params": p}
                                  for n, p in enumerate(part)])
            replies.sort(key=lambda r: r["id"])
            results.extend(r["result"] for r in replies)
        return results


class ElectrumClient:
    """A blocking newline-JSON client for a few hundred checks."""

    def __init__(self, port, name="bench", version="1.4"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.next_id = 0
        self.call("server.version", name, version)

    def call(self, method, *params):
        self.next_id += 1
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                      "params": list(params)}).encode() + b"\n")
        while True:
            message = json.loads(self.file.readline())
            if message.get("id") == self.next_id:
                return message

    def close(self):
        self.sock.close()
