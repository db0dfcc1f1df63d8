"""IndexDB is the one owner of the LevelDB handle.

No module but electrumx/index/db.py imports plyvel or reaches for IndexDB's
handle (`db.db`, `x.db.db`, `x._db`), so every read and every write of the
index goes through an IndexDB method that says what it does, and the crash
safety of its batches is decided in one file.
"""

import ast
from pathlib import Path

import electrumx

PACKAGE = Path(electrumx.__file__).resolve().parent
OWNER = PACKAGE / "index" / "db.py"


def reaches_for_the_store(source: str):
    """[(line, what)] of each plyvel import and each reach for IndexDB's handle."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            modules = []
        found += [(node.lineno, f"imports {m}") for m in modules if m.split(".")[0] == "plyvel"]
        if isinstance(node, ast.Attribute):
            inner = node.value
            if node.attr == "_db" and not (isinstance(inner, ast.Name) and inner.id == "self"):
                found.append((node.lineno, "reaches IndexDB._db"))
            elif node.attr == "db" and (isinstance(inner, ast.Attribute) and inner.attr == "db"
                                        or isinstance(inner, ast.Name) and inner.id == "db"):
                found.append((node.lineno, "reaches .db.db"))
    return found


def test_only_index_db_touches_leveldb():
    modules = sorted(p for p in PACKAGE.rglob("*.py") if p != OWNER)
    assert len(modules) > 50
    offences = [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
                for path in modules
                for line, what in reaches_for_the_store(path.read_text())]
    assert offences == []
    assert reaches_for_the_store(OWNER.read_text())      # the owner, found where it is


def test_the_scan_finds_each_way_of_reaching_the_store():
    source = "\n".join([
        "import plyvel",
        "import plyvel as leveldb",
        "from plyvel import DB",
        "value = self.db.db.get(key)",
        "db.db.compact_range()",
        "batch = controller.db._db.write_batch()",
        "self._db = None",                  # a class's own attribute of that name is its own
        "rows = self.db.history(hashX)",
    ])
    assert [line for line, _what in reaches_for_the_store(source)] == [1, 2, 3, 4, 5, 6]
