"""docs/settings.rst and contrib/electrumx.conf are generated from the SETTINGS table
and must be regenerated when it changes."""

from electrumx.coins import Bitcoin
from electrumx.config import reference
from electrumx.config.parsers import readable_file
from electrumx.config.settings import SETTINGS
from electrumx.config.sources import read_config_file


def test_every_setting_has_an_example_and_a_group():
    names = {setting.name for setting in SETTINGS}
    assert set(reference.EXAMPLES) == names
    assert set(reference.SECTIONS) <= names
    assert SETTINGS[0].name in reference.SECTIONS


def test_the_committed_reference_is_up_to_date():
    assert reference.SETTINGS_RST.read_text() == reference.settings_rst(), \
        "docs/settings.rst is stale: run python -m electrumx.config.reference"
    assert reference.EXAMPLE_CONF.read_text() == reference.example_conf(), \
        "contrib/electrumx.conf is stale: run python -m electrumx.config.reference"


def test_the_check_mode_exits_1_on_a_stale_copy(tmp_path, monkeypatch):
    stale = tmp_path / "settings.rst"
    stale.write_text("old")
    monkeypatch.setattr(reference, "SETTINGS_RST", stale)
    monkeypatch.setattr(reference, "EXAMPLE_CONF", reference.EXAMPLE_CONF)
    try:
        reference.main(["--check"])
    except SystemExit as e:
        assert "out of date" in str(e.code)
    else:
        raise AssertionError("--check passed a stale file")


def test_every_example_is_a_valid_value():
    for setting in SETTINGS:
        if setting.parse is not readable_file:      # the example paths need not exist here
            setting.parse(setting.name, reference.EXAMPLES[setting.name])


def test_the_example_config_loads_commented_and_uncommented(tmp_path):
    assert read_config_file(str(reference.EXAMPLE_CONF)) == {}
    uncommented = tmp_path / "electrumx.conf"
    uncommented.write_text("\n".join(
        line[1:] if line.startswith("#") and "=" in line and line[1:2].isupper() else line
        for line in reference.EXAMPLE_CONF.read_text().splitlines()))
    values = read_config_file(str(uncommented))
    assert values == {setting.name: setting.default_text(Bitcoin) for setting in SETTINGS}
