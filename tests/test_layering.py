"""The package layering docs/architecture.rst draws, held against every module's imports.

A rule broken here is a seam crossed: the protocol layer reaching into the
index instead of asking the read API, configuration depending on what it
configures, a private Twisted name.  (That only index/db.py holds LevelDB is
tests/index/test_store_owner.py's rule.)  The imports are read from
the source with `ast`, so a module need not be importable to be checked.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "electrumx"


def imported_modules(path: Path) -> set:
    """Every module `path` imports, as dotted names (`from a import b` gives a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules_under(folder: str):
    return sorted((PACKAGE / folder).rglob("*.py")) if folder else sorted(PACKAGE.rglob("*.py"))


def offenders(folder: str, forbidden) -> list:
    """'file: module' for each import under `folder` that `forbidden(module)` refuses."""
    return [f"{path.relative_to(PACKAGE.parent)}: {name}"
            for path in modules_under(folder)
            for name in sorted(imported_modules(path)) if forbidden(name)]


def under(*packages):
    return lambda name: any(name == p or name.startswith(p + ".") for p in packages)


RULES = {
    "protocol asks the read API through electrumx.interfaces, never the index":
        ("protocol", under("electrumx.index")),
    "the index never calls into the layers it feeds":
        ("index", under("electrumx.protocol", "electrumx.network", "electrumx.admin")),
    "chain/ is pure parsing and hashing":
        ("chain", under("electrumx.index", "electrumx.protocol", "electrumx.network",
                        "electrumx.admin", "electrumx.config")),
    "config/ reads settings and depends on no part it configures":
        ("config", under("electrumx.admin", "electrumx.index", "electrumx.protocol",
                         "electrumx.network")),
    "no private Twisted module or name":
        ("", lambda name: name.startswith("twisted.") and any(
            part.startswith("_") and part != "__future__" for part in name.split("."))),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_imports_keep_to_the_layering(rule):
    folder, forbidden = RULES[rule]
    assert offenders(folder, forbidden) == [], rule


def test_the_rules_see_imports():
    """A rule that could never match would pass on any code."""
    assert "electrumx.index.db.IndexDB" in imported_modules(PACKAGE / "controller.py")
    assert offenders("index", under("electrumx.index")) != []
