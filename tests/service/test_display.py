"""The display model: Markdown read into blocks of runs whose offsets slice the source exactly."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ingest.documents import Document, load_document
from service.display import Displays
from tests.conftest import REPO

SOURCE = """# Child process

## Synchronous process creation

The **`child_process.spawnSync()`** method is
*generally* identical to [`spawn()`][] with one
difference, see [the docs](https://example.com/docs).

* `cwd` {string} Current working directory.
* `env` {Object} Environment key-value pairs. **Default:** `process.env`.

```js
const { spawnSync } = require('node:child_process');
```

| Option | Meaning |
| --- | --- |
| `shell` | Run inside a shell |

[`spawn()`]: #child_processspawncommand-args-options
"""


def display(text: str, fmt: str = "markdown", start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
    document = Document("d", "Child process", "d.md", text, format=fmt)
    return Displays().passage(document, start, len(text) if end is None else end)


def runs_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for block in blocks:
        runs.extend(block.get("runs", []))
        for row in block.get("rows", []):
            for cell in row:
                runs.extend(cell)
    return runs


def test_markdown_reads_as_formatted_blocks_with_exact_offsets() -> None:
    blocks = display(SOURCE)
    kinds = [b["kind"] for b in blocks]
    assert kinds == ["heading", "heading", "paragraph", "item", "item", "code", "table"]
    paragraph = "".join(str(r["text"]) for r in blocks[2]["runs"])
    assert paragraph == (
        "The child_process.spawnSync() method is generally identical to spawn() with one difference, see the docs."
    )
    marks = {str(r["text"]): r.get("marks") for r in blocks[2]["runs"]}
    assert marks["child_process.spawnSync()"] == ["strong", "code"] and marks["spawn()"] == ["link", "code"]
    assert blocks[3]["marker"] == "•" and blocks[5]["runs"][0]["marks"] == ["code"]
    for run in runs_of(blocks):
        if run.get("exact", True):
            assert SOURCE[run["start"] : run["end"]] == run["text"]


def test_a_passage_is_its_documents_blocks_clipped_to_its_span() -> None:
    start = SOURCE.index("identical")
    end = SOURCE.index("Environment")
    blocks = display(SOURCE, start=start, end=end)
    assert blocks[0]["runs"][0]["text"] == "identical to "
    assert [b["kind"] for b in blocks] == ["paragraph", "item", "item"]
    assert all(start <= r["start"] and r["end"] <= end for r in runs_of(blocks) if r.get("exact", True))


def test_a_definition_list_reads_as_bold_terms_over_their_indented_definitions() -> None:
    text = "-k, --keep-index\n:   Only for `push`.\n\n    Changes stay.\n\n--quiet\n: Say nothing.\n"
    blocks = display(text)
    assert [(b["kind"], b.get("depth", 0), "".join(r["text"] for r in b["runs"])) for b in blocks] == [
        ("paragraph", 0, "-k, --keep-index"),
        ("paragraph", 1, "Only for push."),
        ("paragraph", 1, "Changes stay."),
        ("paragraph", 0, "--quiet"),
        ("paragraph", 1, "Say nothing."),
    ]
    assert blocks[0]["runs"][0]["marks"] == ["strong"] and "marks" not in blocks[2]["runs"][0]
    for run in runs_of(blocks):
        assert text[run["start"] : run["end"]] == run["text"]


def test_plain_text_keeps_its_paragraphs() -> None:
    text = "First paragraph,\nwrapped.\n\nSecond one."
    blocks = display(text, fmt="text")
    assert [b["runs"][0]["text"] for b in blocks] == ["First paragraph,\nwrapped.", "Second one."]


def test_display_costs_little_per_passage() -> None:
    corpus = REPO / "eval" / "corpora" / "pip-docs"
    documents = [load_document(path, corpus) for path in sorted(corpus.rglob("*.md"))]
    displays = Displays()
    started = time.perf_counter()
    displays.warm(documents)
    parse_ms = (time.perf_counter() - started) * 1000
    spans = [(d, s) for d in documents for s in range(0, len(d.text), 900)]
    started = time.perf_counter()
    for document, start in spans:
        displays.passage(document, start, start + 1000)
    per_passage_ms = (time.perf_counter() - started) * 1000 / len(spans)
    characters = sum(len(d.text) for d in documents)
    print(f"display: parse {parse_ms:.0f} ms for {characters} characters; {per_passage_ms:.3f} ms a passage")
    assert per_passage_ms < 2.0


@pytest.mark.parametrize(
    ("corpus", "source"),
    [("git-man-html", "git-rebase.html"), ("python-tutorial-html", "controlflow.html")],
)
def test_every_passage_of_a_page_with_code_after_words_is_formatted(corpus: str, source: str) -> None:
    """A fence that the HTML reader wrote after words ("Run ```") is a line break for markdown-it
    only: its line numbers once ran past the text's own lines (IndexError, a 500 for /ask)."""
    from ingest.chunking import ChunkerSettings, chunk_document

    folder = REPO / "eval" / "corpora" / corpus
    document = load_document(folder / source, folder)
    displays = Displays()
    _, chunks = chunk_document(document, ChunkerSettings())
    assert chunks
    for chunk in chunks:
        assert displays.passage(document, chunk.start, chunk.end)
