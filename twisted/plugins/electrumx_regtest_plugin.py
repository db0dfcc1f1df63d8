"""The `twistd electrumx-regtest` plugin; everything lives in electrumx.regtest.tap."""

from twisted.application.service import ServiceMaker

electrumx_regtest = ServiceMaker(
    "txelectrumx regtest node", "electrumx.regtest.tap",
    "A bitcoind-compatible regtest node on a generated chain, for demos and tests.",
    "electrumx-regtest")
