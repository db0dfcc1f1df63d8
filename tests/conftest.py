"""Shared test fixtures.

Tests that need the reactor use pytest-twisted (`pytest_twisted.inlineCallbacks`
or `ensureDeferred`); trial's reactor-spinning TestCase is not used here.
"""

import json
import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.regtest"]

REPOSITORY = Path(__file__).resolve().parents[1]
TESTDATA = REPOSITORY / "tests" / "data"
OUTSIDE = str(REPOSITORY.parent / "shared")
"""A folder that sits beside the repository in its developers' workplace, never in a
fresh clone: a test that reads it would pass there and fail everywhere else."""


def _refuse_reads_beside_the_repository(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and \
            isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if path == OUTSIDE or path.startswith(OUTSIDE + os.sep):
            raise PermissionError(f"tests must not read outside the repository: {path}")


sys.addaudithook(_refuse_reads_beside_the_repository)


def load_testdata(kind):
    """Every JSON file of tests/data/<kind> as (name, dict) pairs; the folder must exist."""
    folder = TESTDATA / kind
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no test data in {folder}")
    return [(p.stem, json.loads(p.read_text())) for p in files]


@pytest.fixture
def testdata_blocks():
    return load_testdata("blocks")
