"""The README is the front door and the reference is a MkDocs site: both are checked so that no
link, anchor or page goes stale (`mkdocs build --strict` fails on any of them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README_LIMIT = 15 * 1024


def test_mkdocs_build_is_strictly_clean(tmp_path: Path) -> None:
    # Not `-q`: quiet mode hides the warnings that strict mode counts, and then passes.
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert result.returncode == 0 and not warnings, "\n".join(warnings) or result.stderr[-2000:]
    assert (tmp_path / "site" / "index.html").is_file()


def test_readme_is_a_front_door() -> None:
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; the reference belongs in docs/ (limit {README_LIMIT})"


def test_readme_links_point_at_files_that_exist() -> None:
    text = (ROOT / "README.md").read_text()
    targets = [t for t in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text) if not t.startswith(("http://", "https://"))]
    assert targets, "the README links to the reference"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_every_docs_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f": {p}" not in nav] == []


def test_the_index_lists_every_page() -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name != "index.md")
    assert [p for p in pages if f"]({p})" not in index] == []


# "673 passed", "44 tests", "(collected at this commit)": a count goes stale with the next test.
TEST_COUNT = re.compile(r"\b\d+ (?:passed|tests?|node tests|JS unit tests)\b|tests? collected|collected at this commit", re.I)


def test_no_page_hard_codes_a_test_count() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)!r}"
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for match in TEST_COUNT.finditer(path.read_text())
    ]
    assert found == []
