"""The docs: the MkDocs site builds in strict mode without a warning, and the README (the front page,
not part of the site) links only to files that exist, at anchors that exist."""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"
README_MAX_LINES = 250  # a front page; the rest lives in docs/
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def heading_anchor(heading: str) -> str:
    """The id Python-Markdown's toc extension (MkDocs's default) gives a heading."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(markdown: Path) -> set[str]:
    text = FENCE.sub("", markdown.read_text(encoding="utf-8"))
    return {heading_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def relative_links(markdown: Path) -> list[str]:
    text = FENCE.sub("", markdown.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]


def broken_links(markdown: Path) -> list[str]:
    broken = []
    for target in relative_links(markdown):
        path, _, fragment = target.partition("#")
        file = (markdown.parent / path).resolve() if path else markdown
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target}: no such heading")
    return broken


def test_every_relative_link_of_the_readme_points_to_something_that_exists() -> None:
    assert relative_links(README), "the README should link to the docs"
    assert broken_links(README) == []


def test_the_link_check_finds_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# Title\n\n## A section: here\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md#a-section-here) [gone](missing.md) [bad](there.md#nowhere) ![img](there.md)\n"
        "[web](https://example.org/x) `[code](nope.md)`\n\n```\n[fenced](nope.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["missing.md: no such file", "there.md#nowhere: no such heading"]


def test_the_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"
    assert "make run" in lines[3] and "make test" in lines[4], "the two commands come first"


def test_the_docs_site_builds_strictly_without_a_warning(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs site needs the 'dev' extra (mkdocs)")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(REPO / "mkdocs.yml"),
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{output}"
    assert "WARNING" not in output, f"mkdocs warned:\n{output}"
    assert (tmp_path / "site" / "index.html").exists()
