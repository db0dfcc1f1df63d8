"""python -m electrumx.regtest [options]: the same as `twistd -n electrumx-regtest`."""

import sys

from twisted.scripts.twistd import run

if __name__ == "__main__":
    sys.argv = ["twistd", "--nodaemon", "--pidfile=", "electrumx-regtest", *sys.argv[1:]]
    run()
