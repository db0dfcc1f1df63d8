"""Our listeners as an onion service, through txtorcon and a tor control-port stand-in.

The stand-in (`tests.network.tor_control`) records every command, so these
tests check exactly what we ask of tor; txtorcon itself is real.  A real tor
is driven in `test_real_tor.py`.  TOR_CONTROL=launch (txtorcon starting a
tor) is not tested.
"""

import types

import pytest
import pytest_twisted
from twisted.internet import reactor

from electrumx.config.services import Service
from electrumx.network.onion import (OnionError, OnionService, add_onion_command,
                                     parse_add_onion, published_ports)
from electrumx.protocol.methods.server import server_features
from electrumx.coins import BitcoinRegtest
from tests.network.tor_control import NEW_KEY, SERVICE_ID, start_tor_control


def onion_settings(tmp_path, port, **overrides):
    values = dict(coin=BitcoinRegtest, tor_control=f"tcp:127.0.0.1:{port}",
                  tor_control_password="", tor_onion_key_file="",
                  db_directory=str(tmp_path),
                  services=[Service("tcp", "", 50001), Service("ssl", "127.0.0.1", 50002),
                            Service("rpc", "localhost", 8000)],
                  report_services=[Service("tcp", "electrum.example.com", 50001)])
    values.update(overrides)
    return types.SimpleNamespace(**values)


def test_commands_and_replies():
    ports = published_ports([Service("tcp", "", 50001), Service("wss", "10.0.0.2", 50004),
                             Service("rpc", "localhost", 8000)])
    assert ports == [(50001, "127.0.0.1", 50001), (50004, "10.0.0.2", 50004)]
    assert add_onion_command(ports) == ("ADD_ONION NEW:ED25519-V3 Port=50001,127.0.0.1:50001 "
                                        "Port=50004,10.0.0.2:50004")
    assert add_onion_command(ports[:1], "ED25519-V3:abc") == (
        "ADD_ONION ED25519-V3:abc Flags=DiscardPK Port=50001,127.0.0.1:50001")
    assert parse_add_onion(f"ServiceID={SERVICE_ID}\nPrivateKey={NEW_KEY}\nOK") == (
        SERVICE_ID, NEW_KEY)
    with pytest.raises(OnionError):
        parse_add_onion("ServiceID=short\nOK")


@pytest_twisted.ensureDeferred
async def test_the_onion_service_is_created_reported_and_removed(tmp_path):
    control = await start_tor_control()
    settings = onion_settings(tmp_path, control.port)
    onion = OnionService(settings, reactor)
    try:
        onion.startService()
        host = await onion.when_ready()
        assert host == SERVICE_ID + ".onion"
        [add] = [c for c in control.commands if c.startswith("ADD_ONION")]
        assert add == ("ADD_ONION NEW:ED25519-V3 Port=50001,127.0.0.1:50001 "
                       "Port=50002,127.0.0.1:50002")
        assert control.commands[:2] == ["PROTOCOLINFO 1", "AUTHENTICATE"]
        # The key is kept, private to us, so the next start has the same address.
        key_file = tmp_path / "tor-onion-key"
        assert key_file.read_text() == NEW_KEY + "\n"
        assert key_file.stat().st_mode & 0o777 == 0o600
        features = server_features(settings)
        assert features["hosts"][host] == {"tcp_port": 50001, "ssl_port": 50002}
        assert f"ssl://{host}:50002" in features["services"]
    finally:
        await onion.stopService()
    assert control.commands[-1] == f"DEL_ONION {SERVICE_ID}"

    control.commands.clear()
    again = OnionService(onion_settings(tmp_path, control.port), reactor)
    again.startService()
    await again.when_ready()
    [add] = [c for c in control.commands if c.startswith("ADD_ONION")]
    assert add.startswith(f"ADD_ONION {NEW_KEY} Flags=DiscardPK ")
    await again.stopService()
    await control.listening.stopListening()


@pytest_twisted.ensureDeferred
async def test_no_onion_service_without_tor(tmp_path):
    control = await start_tor_control()
    await control.listening.stopListening()
    onion = OnionService(onion_settings(tmp_path, control.port), reactor)
    onion.startService()
    with pytest.raises(Exception):
        await onion.when_ready()
    await onion.stopService()
    bad_key = tmp_path / "key"
    bad_key.write_text("RSA1024:old")
    onion = OnionService(onion_settings(tmp_path, control.port,
                                        tor_onion_key_file=str(bad_key)), reactor)
    onion.startService()
    with pytest.raises(OnionError, match="does not hold an ED25519-V3 onion key"):
        await onion.when_ready()
