"""The README's two commands stay true: CI runs the very test command it gives."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    lines = (ROOT / "README.rst").read_text().splitlines()
    return [line.strip() for line in lines if line.startswith("    python3 -m venv")]


def test_readme_starts_with_the_run_and_test_commands():
    run, test = readme_commands()[:2]
    assert "twistd -n electrumx --demo" in run
    assert "pytest" in test


def test_readme_gives_the_wallet_commands_the_demo_prints():
    """The README's Electrum commands are those the demo prints at its default port (and
    tests/wallet runs the ones it prints)."""
    from electrumx.config import load_settings
    from electrumx.regtest.demo import electrum_server, wallet_commands
    settings = load_settings({}, {}, demo=True)
    commands = wallet_commands(electrum_server(settings.services))
    block = "\n".join(f"    {command}" for command in commands)
    assert f"::\n\n{block}\n\n" in (ROOT / "README.rst").read_text()


def test_ci_runs_the_readme_test_command():
    test = readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in [line.strip() for line in ci]


def test_no_test_reads_beside_the_repository():
    """A fresh clone has no ../shared: tests/conftest.py refuses any read of it, so a
    test that depends on it fails here, in the workplace, and not first in a clone."""
    from tests.conftest import OUTSIDE
    import pytest
    for attempt in (lambda: open(Path(OUTSIDE) / "testdata" / "x.json"),
                    lambda: list(Path(OUTSIDE).iterdir())):
        with pytest.raises(PermissionError, match="outside the repository"):
            attempt()

