"""Protocol version negotiation (REFERENCE §1.5)."""

import pytest

from electrumx.protocol.version import (PROTOCOL_MAX, PROTOCOL_MIN, UnsupportedVersion,
                                        negotiate_version, parse_version, version_string)


def test_server_range():
    assert (version_string(PROTOCOL_MIN), version_string(PROTOCOL_MAX)) == ("1.4", "1.7")


@pytest.mark.parametrize("request_, expected", [
    (None, "1.4"),                      # omitted: the spec's default
    ("1.4", "1.4"),
    ("1.4.1", "1.4.1"),
    ("1.4.2", "1.4.2"),
    ("1.6", "1.6"),
    ("1.6.0", "1.6"),                   # a zero revision is the same version
    (["1.4", "1.6"], "1.6"),
    (["1.4", "1.4.2"], "1.4.2"),
    (["1.2", "1.4"], "1.4"),
    (["1.1", "2.0"], "1.7"),            # the highest both speak
    (["1.4", "1.99"], "1.7"),
    (("1.4", "1.6"), "1.6"),
    (["1.5", "1.5"], "1.5"),            # no such version was defined; it is in range
    ("1.6.1", "1.6.1"),                 # nor this one: it is 1.6's methods
    ("1.7", "1.7"),
    ("1.7.0", "1.7"),
    (["1.4", "1.7"], "1.7"),
    (["1.7", "1.7.0"], "1.7"),
    (["1.6", "1.8"], "1.7"),
])
def test_negotiated(request_, expected):
    assert version_string(negotiate_version(request_)) == expected


@pytest.mark.parametrize("request_", [
    "1.3", "1.2", "2.0", "1.8", "1.7.1",   # single versions outside 1.4..1.7
    ["1.8", "2.0"],                     # client min above our max
    ["1.0", "1.3"],                     # client max below our min
    ["1.6", "1.4"],                     # min above max
    "1", "", "a.b", "1.4.x", "1..4", "1.4 ", " 1.4", "-1.4", "1.-4", "1.4.", "١.٤",
    5, 1.4, True, {}, ["1.4"], ["1.4", "1.6", "1.6"], ["1.4", None], [1, 4],
])
def test_refused(request_):
    with pytest.raises(UnsupportedVersion):
        negotiate_version(request_)


def test_parse_drops_only_trailing_zero_revisions():
    assert parse_version("1.4.0") == (1, 4)
    assert parse_version("1.0") == (1, 0)
    assert parse_version("1.4.0.2") == (1, 4, 0, 2)
    assert parse_version("01.004") == (1, 4)


def test_refusal_says_what_we_speak():
    with pytest.raises(UnsupportedVersion, match=r"1\.4\.\.1\.7"):
        negotiate_version("2.0")
