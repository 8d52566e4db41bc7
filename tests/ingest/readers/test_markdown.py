"""The Markdown reader: exact, typed segments from markdown-it, front matter, MyST directives."""

from __future__ import annotations

from pathlib import Path

from ingest.chunking import ChunkerSettings, chunk_document_with_sentences
from ingest.documents import load_document
from ingest.readers import SegmentKind, markdown_segments
from ingest.sentences import sentence_spans
from ingest.structure import parse_blocks

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


def test_a_myst_directive_is_its_body_without_the_fence_lines() -> None:
    text = (
        "Intro.\n\n```{note}\nUse quotes in the shell.\nReally.\n```\n\n```{versionadded} 8.0\n```\n\n"
        "````{tab} Linux\n```console\n$ ls\n```\n````\n\n```{warning}\nAn unclosed one.\n"
    )
    segments, _, _ = markdown_segments(text)
    assert [(s.kind, text[s.start : s.end]) for s in segments] == [
        (SegmentKind.PARAGRAPH, "Intro."),
        (SegmentKind.PARAGRAPH, "Use quotes in the shell.\nReally."),
        (SegmentKind.PARAGRAPH, "```console\n$ ls\n```"),
        (SegmentKind.PARAGRAPH, "An unclosed one."),
    ]


def test_a_definition_list_entry_is_its_term_with_the_first_paragraph_of_its_definition() -> None:
    """An option's name and the sentence saying what it does are one candidate; the definition's
    later paragraphs, indented under the term, stay prose, and its code stays code."""
    text = (
        "Options:\n\n"
        "-k, --keep-index\n:   Only valid for `push`.\n\n    All changes already added are left intact.\n\n"
        "    ```\n    git stash push -k\n    ```\n\n"
        "**triage**\n: default label given to new issues\n\n"
        "After the list.\n"
    )
    segments, _, _ = markdown_segments(text)
    assert [(s.kind, text[s.start : s.end]) for s in segments] == [
        (SegmentKind.PARAGRAPH, "Options:"),
        (SegmentKind.LIST_ITEM, "-k, --keep-index\n:   Only valid for `push`."),
        (SegmentKind.PARAGRAPH, "All changes already added are left intact."),
        (SegmentKind.CODE, "```\n    git stash push -k\n    ```"),
        (SegmentKind.LIST_ITEM, "**triage**\n: default label given to new issues"),
        (SegmentKind.PARAGRAPH, "After the list."),
    ]
