"""txelectrumx: an Electrum protocol server for Bitcoin-like coins, on Twisted."""

__version__ = "0.1.0"
SERVER_NAME = "txelectrumx"
SERVER_VERSION = f"{SERVER_NAME} {__version__}"
