"""Every reStructuredText page of the project reads without a docutils warning."""

from pathlib import Path

import pytest
from docutils.core import publish_doctree

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.rst", ROOT / "bench" / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_is_valid_restructuredtext(page):
    publish_doctree(page.read_text(), source_path=str(page),
                    settings_overrides={"halt_level": 2, "report_level": 2,
                                        "file_insertion_enabled": False})
