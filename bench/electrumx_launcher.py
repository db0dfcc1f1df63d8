"""Runs ElectrumX 2.0's server with its TCP padding delay turned off; run with its own venv.

ElectrumX 2.0 holds small TCP responses for up to a second, to pad them to
uniform packets against traffic analysis, and no setting turns that off.  A
throughput comparison with it on would measure the delay, not the server, so
this sets `PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = 0` and then runs
the `electrumx_server` entry point, configured by the environment as usual.
"""

from electrumx.cli.electrumx_server import main
from electrumx.server.transport import PaddedRSTransport

PADDING_OFF = "ElectrumX TCP padding delay disabled: " \
              "PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = 0"

if __name__ == "__main__":
    assert hasattr(PaddedRSTransport, "WAIT_FOR_BUFFER_GROWTH_SECONDS")
    PaddedRSTransport.WAIT_FOR_BUFFER_GROWTH_SECONDS = 0
    print(PADDING_OFF, flush=True)
    main()
