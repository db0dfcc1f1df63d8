"""The onion service through a real tor process (Debian's `tor`), offline.

tor runs with `DisableNetwork 1`: it builds no circuits, but its control
port works, so `ADD_ONION` really creates the service and returns its
address.  What needs circuits (reaching a peer through tor's SOCKS port) is
tested against the SOCKS stand-in in `test_tor_peers.py`.  `.ci/run`
installs tor and sets ELECTRUMX_REQUIRE_TOR=1, so there the test fails
rather than skips when tor is missing.
"""

import shutil
import subprocess
import time

import pytest
import pytest_twisted
from twisted.internet import reactor

from electrumx.network.onion import OnionService
from tests.fixtures.host import free_port, required_program
from tests.network.test_onion_service import onion_settings

# Debian puts tor in /usr/sbin, which is not on every user's PATH.
TOR = shutil.which("tor") or shutil.which("tor", path="/usr/sbin")


@pytest.fixture
def tor(tmp_path):
    """A tor process with networking disabled; yields its control port."""
    tor_path = required_program(TOR, "tor", "apt-get install tor", "ELECTRUMX_REQUIRE_TOR")
    control = free_port()
    data = tmp_path / "tor-data"
    data.mkdir(mode=0o700)
    torrc = tmp_path / "torrc"
    torrc.write_text(f"DataDirectory {data}\nDisableNetwork 1\nSocksPort 0\n"
                     f"ControlPort 127.0.0.1:{control}\nCookieAuthentication 0\n"
                     f"Log notice stdout\nAvoidDiskWrites 1\n")
    log = (tmp_path / "tor.log").open("w")
    proc = subprocess.Popen([tor_path, "-f", str(torrc)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "Opened Control listener" not in (tmp_path / "tor.log").read_text():
            assert proc.poll() is None, (tmp_path / "tor.log").read_text()
            assert time.monotonic() < deadline, "tor did not open its control port"
            time.sleep(0.05)
        yield control
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest_twisted.ensureDeferred
async def test_a_real_tor_creates_our_onion_service_and_keeps_its_address(tor, tmp_path):
    settings = onion_settings(tmp_path, tor)
    onion = OnionService(settings, reactor)
    onion.startService()
    try:
        host = await onion.when_ready()
        assert isinstance(host, str), host
        assert host.endswith(".onion") and len(host) == 56 + len(".onion")
        reply = await onion.protocol.queue_command("GETINFO onions/current")
        assert host[:-len(".onion")] in reply
        key_file = tmp_path / "tor-onion-key"
        assert key_file.read_text().startswith("ED25519-V3:")
        assert key_file.stat().st_mode & 0o777 == 0o600
    finally:
        await onion.stopService()

    # Restarted with the kept key: the same address.
    again = OnionService(onion_settings(tmp_path, tor), reactor)
    again.startService()
    try:
        assert await again.when_ready() == host
    finally:
        await again.stopService()
