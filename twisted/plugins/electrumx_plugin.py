"""The `twistd electrumx` plugin; everything lives in electrumx.tap."""

from twisted.application.service import ServiceMaker

electrumx = ServiceMaker(
    "txelectrumx", "electrumx.tap", "An Electrum protocol server for Bitcoin-like coins.",
    "electrumx")
