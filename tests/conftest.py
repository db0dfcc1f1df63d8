"""Shared test fixtures.

Tests that need the reactor use pytest-twisted (`pytest_twisted.inlineCallbacks`
or `ensureDeferred`); trial's reactor-spinning TestCase is not used here.
"""

import json
import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.regtest"]

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TESTDATA = Path(os.environ.get("ELECTRUMX_TESTDATA", SHARED / "testdata"))


def load_testdata(kind):
    """Every JSON file of ../shared/testdata/<kind> as (name, dict) pairs."""
    folder = TESTDATA / kind
    if not folder.is_dir():
        return []
    return [(p.stem, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


@pytest.fixture
def testdata_blocks():
    return load_testdata("blocks")
