"""The configuration is read before anything runs and every part reads it, so it depends
on none of them: nothing under electrumx/config imports the admin interfaces or the index."""

import ast
import pathlib

CONFIG = pathlib.Path(__file__).parents[2] / "electrumx" / "config"

ABOVE = ("electrumx.admin", "electrumx.index")
"""The parts that read the settings, which the settings must not depend on."""


def imported_modules(path):
    """The modules a source file imports (`from x import y` counts as x and x.y)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def is_above_config(module):
    return any(module == part or module.startswith(part + ".") for part in ABOVE)


def test_config_imports_neither_admin_nor_index():
    sources = sorted(CONFIG.rglob("*.py"))
    assert len(sources) > 5
    wrong = [(path.name, module) for path in sources for module in imported_modules(path)
             if is_above_config(module)]
    assert wrong == []
