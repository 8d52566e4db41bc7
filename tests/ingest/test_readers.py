"""Each format's reader: exact offsets into the text it reports, structure from a real parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.chunking import ChunkerSettings, chunk_document_with_sentences
from ingest.documents import Document, load_document
from ingest.readers import SegmentKind, markdown_segments, read_file
from ingest.sentences import sentence_spans
from ingest.structure import parse_blocks

REPO = Path(__file__).resolve().parents[2]
FHS = REPO / "eval/corpora/fhs-pdf/fhs-3.0.pdf"

MARKDOWN = """---
title: The Front Matter Title
tags: [a, b]
---
<!--type=misc-->

# File system

Intro paragraph that is hard
wrapped across lines. It has version 3.11.2 and a URL https://example.com/a.b in it.

[ref]: https://example.com/reference "not content"

## File system flags

The following flags are available wherever a `flag` option takes a string.
To open a file, run:

```js
fs.open('x.txt', 'r');
```

* Returns: {boolean}
* Returns: {boolean}

| flag | meaning |
|------|---------|
| `r`  | read    |

### Deeper ###

Setext heading
--------------

Last words.
"""


def test_markdown_segments_are_exact_and_typed() -> None:
    segments, title, front = markdown_segments(MARKDOWN)
    assert title == "The Front Matter Title" and front["tags"] == ["a", "b"]
    texts = [MARKDOWN[s.start : s.end] for s in segments]
    # Front matter, the HTML comment and the link reference definition give no segment.
    assert not any("type=misc" in t or "[ref]" in t or "tags:" in t for t in texts)
    headings = [(s.level, s.name, MARKDOWN[s.start : s.end]) for s in segments if s.kind is SegmentKind.HEADING]
    assert headings == [
        (1, "File system", "File system"),
        (2, "File system flags", "File system flags"),
        (3, "Deeper", "Deeper"),
        (2, "Setext heading", "Setext heading"),
    ]
    kinds = [s.kind for s in segments]
    assert kinds.count(SegmentKind.CODE) == 1 and kinds.count(SegmentKind.TABLE) == 1
    assert kinds.count(SegmentKind.LIST_ITEM) == 2
    assert next(t for s, t in zip(segments, texts, strict=True) if s.kind is SegmentKind.CODE).startswith("```js")


def test_markdown_blocks_carry_heading_paths_and_short_repeats_stay_content() -> None:
    segments, _, _ = markdown_segments(MARKDOWN)
    blocks = parse_blocks(MARKDOWN, segments)
    returns = [b for b in blocks if b.text == "* Returns: {boolean}"]
    assert len(returns) == 2 and all(b.indexed for b in returns)
    table = next(b for b in blocks if b.form == "table")
    assert table.section == "File system › File system flags"
    last = next(b for b in blocks if b.text == "Last words.")
    assert last.section == "File system › Setext heading"


def test_code_stays_with_its_introduction_and_title_comes_from_the_document(tmp_path: Path) -> None:
    (tmp_path / "fs.md").write_text(MARKDOWN, encoding="utf-8")
    document = load_document(tmp_path / "fs.md", tmp_path)
    assert document.title == "The Front Matter Title" and document.format == "markdown"
    _, chunks, sentences = chunk_document_with_sentences(document, ChunkerSettings(max_chars=120))
    for chunk in chunks:
        assert document.text[chunk.start : chunk.end] == chunk.text
    holder = next(c for c in chunks if "fs.open" in c.text)
    assert "To open a file, run:" in holder.text
    assert all(document.text[s.start : s.end].strip() for s in sentences)
    assert not any("fs.open" in document.text[s.start : s.end] for s in sentences)  # code is no answer


def test_hard_wrapped_lines_do_not_end_sentences() -> None:
    text = "A common use case for `readline` is to consume an input file one\nline at a time. E.g. this: v3.11.2 works."
    spans = [text[a:b] for a, b in sentence_spans(text)]
    assert spans == [
        "A common use case for `readline` is to consume an input file one\nline at a time.",
        "E.g. this: v3.11.2 works.",
    ]


def test_html_main_content_is_the_document_text(tmp_path: Path) -> None:
    page = """<html><head><title>Deploying your docs</title><script>var tracking = 1;</script></head>
    <body><nav><ul><li><a href="/">Home</a></li><li><a href="/x">Menu entry</a></li></ul></nav>
    <main><h1>Deploying</h1><p>Pages are built into the site directory and copied to the server by the
    deploy command, which never touches your sources.</p><h2>Custom domains</h2>
    <p>Add a CNAME file to the docs directory so that the domain survives every redeploy of the site.</p></main>
    <footer>Copyright 2024 Example footer text</footer></body></html>"""
    (tmp_path / "deploy.html").write_text(page, encoding="utf-8")
    document = load_document(tmp_path / "deploy.html", tmp_path)
    assert document.format == "html" and document.title == "Deploying your docs"
    assert "CNAME file" in document.text
    assert "tracking" not in document.text and "Menu entry" not in document.text
    blocks = parse_blocks(document.text, document.segments)
    cname = next(b for b in blocks if "CNAME" in b.text)
    assert cname.section == "Deploying › Custom domains"
    assert document.text[cname.start : cname.end] == cname.text


@pytest.fixture(scope="module")
def fhs() -> Document:
    return load_document(FHS, FHS.parent)


def test_pdf_pages_are_recorded_and_citations_land_on_their_page(fhs: Document) -> None:
    import pypdf

    pages = [p.extract_text() for p in pypdf.PdfReader(str(FHS)).pages]
    assert fhs.format == "pdf" and len(fhs.pages) == len(pages) == 50
    for number, start in enumerate(fhs.pages):
        assert fhs.text[start : start + len(pages[number])] == pages[number]
    _, chunks, _ = chunk_document_with_sentences(fhs, ChunkerSettings())
    for chunk in chunks:
        assert fhs.text[chunk.start : chunk.end] == chunk.text
        first, last = fhs.page_span(chunk.start, chunk.end) or (0, 0)
        assert chunk.text.split("\n")[0] in pages[first - 1]
        assert chunk.text.split("\n")[-1] in pages[last - 1]
    lock = next(c for c in chunks if "Lock files should be stored within the /var/lock directory" in c.text)
    page = (fhs.page_span(lock.start, lock.end) or (0, 0))[0]
    assert "Lock files should be stored within the /var/lock directory" in pages[page - 1]


def test_pdf_structure_sections_and_running_heads(fhs: Document) -> None:
    blocks = parse_blocks(fhs.text, fhs.segments)
    sections = {b.section for b in blocks if b.section}
    assert any(s.startswith("Chapter 3. The Root Filesystem › 3.1. Purpose") for s in sections)
    assert not any(s.rstrip().endswith((".", "9")) and "...." in s for s in sections)  # no contents lines
    chrome = [b for b in blocks if b.kind.value == "chrome"]
    assert chrome and all(not b.indexed for b in chrome)


def test_unknown_format_is_refused_by_the_reader(tmp_path: Path) -> None:
    (tmp_path / "x.odt").write_bytes(b"PK")
    from ingest.errors import CorpusError

    with pytest.raises(CorpusError, match="unsupported file type"):
        read_file(tmp_path / "x.odt")


def test_a_file_is_parsed_again_only_when_its_bytes_or_path_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.readers as readers

    parsed_paths: list[str] = []
    real = readers.READERS[".md"]

    def counting(raw: bytes, path: Path) -> readers.Parsed:
        parsed_paths.append(path.name)
        return real(raw, path)

    monkeypatch.setitem(readers.READERS, ".md", counting)
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    first.write_text("# Title\n\nOne paragraph.\n", encoding="utf-8")
    second.write_text("# Title\n\nOne paragraph.\n", encoding="utf-8")
    once = read_file(first)
    again = read_file(first)
    assert again == once and again.segments is not once.segments  # equal, in containers of its own
    read_file(second)  # same bytes, another path: its own parse
    first.write_text("# Title\n\nAnother paragraph.\n", encoding="utf-8")
    assert "Another" in read_file(first).text
    assert parsed_paths == ["a.md", "b.md", "a.md"]
