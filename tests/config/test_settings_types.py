"""`Settings` declares one type per setting, and it is the type the setting's parser returns.

The table (`SETTINGS`) says how each setting is parsed; the `Settings` class
says, for mypy and the reader, what each attribute holds.  These tests keep
the two from drifting apart.
"""

import inspect

import pytest

from electrumx.coins import Coin
from electrumx.config import SETTINGS, Settings
from electrumx.config.services import Service

from tests.config.helpers import load

BUILT_BY_THE_LOADER = {"coin", "services", "report_services"}
"""Attributes the loader builds from more than their setting's own text (see `Settings`)."""
NOT_SETTINGS = {"daemon_urls", "demo"}


def declared():
    return inspect.get_annotations(Settings)


def test_settings_declares_every_setting_and_nothing_else():
    assert set(declared()) == {setting.attribute for setting in SETTINGS} | NOT_SETTINGS


def test_each_attribute_has_the_type_its_parser_returns():
    for setting in SETTINGS:
        if setting.attribute not in BUILT_BY_THE_LOADER:
            returned = inspect.get_annotations(setting.parse)["return"]
            assert declared()[setting.attribute] == returned, setting.name


def test_what_the_loader_builds():
    settings = load({"SERVICES": "tcp://:50001,rpc://",
                     "REPORT_SERVICES": "tcp://electrum.example.com:50001"})
    assert issubclass(settings.coin, Coin)
    assert [type(service) for service in settings.services] == [Service, Service]
    assert [type(service) for service in settings.report_services] == [Service]
    assert settings.demo is False and len(settings.daemon_urls) == 1


def test_settings_are_assignable_but_take_no_new_attribute():
    """The admin RPC changes some settings live; a misspelt name fails instead of passing."""
    settings = load()
    settings.max_subs = 10
    assert settings.max_subs == 10
    with pytest.raises(AttributeError):
        settings.max_sub = 10
