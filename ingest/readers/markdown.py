"""Markdown (CommonMark, GFM tables, MyST directives, definition lists): block segments from
markdown-it's source line maps."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ingest.readers.parsed import Parsed, Segment, SegmentKind, decode_utf8, trim_span

_BLOCK_KINDS = {
    "paragraph_open": SegmentKind.PARAGRAPH,
    "fence": SegmentKind.CODE,
    "code_block": SegmentKind.CODE,
    "table_open": SegmentKind.TABLE,
    "blockquote_open": SegmentKind.PARAGRAPH,
}


def _markdown_parser(front_matter: bool = True) -> Any:
    from markdown_it import MarkdownIt
    from mdit_py_plugins.deflist import deflist_plugin
    from mdit_py_plugins.front_matter import front_matter_plugin

    parser = MarkdownIt("commonmark").enable("table").use(deflist_plugin)
    return parser.use(front_matter_plugin) if front_matter else parser


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer(r"\n", text))
    starts.append(len(text))
    return starts


def _plain_inline(token: Any) -> str:
    parts = [child.content for child in (token.children or []) if child.type in ("text", "code_inline")]
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _heading_span(text: str, start: int, end: int, markup: str) -> tuple[int, int]:
    """The heading's words within its source lines: without '#' markers or a setext underline."""
    if markup.startswith("#"):
        line = text[start:end]
        lead = re.match(r" {0,3}#{1,6}[ \t]*", line)
        body_start = start + (lead.end() if lead else 0)
        trail = re.search(r"(?:[ \t]+#+)?[ \t]*\n?$", text[body_start:end])
        body_end = body_start + (trail.start() if trail else end - body_start)
        return body_start, max(body_start, body_end)
    underline = text.rfind("\n", start, end - 1)  # the last source line is the ===/--- underline
    return start, underline if underline > start else end


def markdown_segments(
    text: str, parse_text: str | None = None, front_matter: bool = True
) -> tuple[list[Segment], str | None, dict[str, Any]]:
    """Block segments of a CommonMark/GFM text from markdown-it's source line maps. Front
    matter, HTML blocks (comments included) and link reference definitions produce no
    segment, so they are never indexed; the text itself stays the source, offsets exact.
    `parse_text`, where given, is what markdown-it reads instead: a copy of `text` of the same
    length with some markup neutralised, so the segments still slice `text`. Without
    `front_matter` (a page's Markdown, which has none), a text that opens with '---' (a rule,
    from an <hr>) is not read as front matter up to the next rule."""
    if parse_text is not None and len(parse_text) != len(text):
        raise ValueError("parse_text must be as long as text")
    tokens = _markdown_parser(front_matter).parse(text if parse_text is None else parse_text)
    lines = _line_starts(text)
    segments: list[Segment] = []
    front: dict[str, Any] = {}
    first_h1: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "front_matter":
            front = _front_matter(token.content)
        elif token.type == "dl_open" and token.level == 0:
            i = _definition_segments(tokens, i, text, lines, segments)
            continue
        elif token.type == "list_item_open" and token.level == 1 and token.map:
            start, end = trim_span(text, lines[token.map[0]], lines[token.map[1]])
            if end > start:
                segments.append(Segment(start, end, SegmentKind.LIST_ITEM))
        elif token.map and token.level == 0:
            start, end = lines[token.map[0]], lines[token.map[1]]
            if token.type == "heading_open":
                name = _plain_inline(tokens[i + 1])
                start, end = trim_span(text, *_heading_span(text, start, end, token.markup))
                level = int(token.tag[1])
                if level == 1 and first_h1 is None:
                    first_h1 = name
                if end > start and name:
                    segments.append(Segment(start, end, SegmentKind.HEADING, level, name))
            elif token.type in _BLOCK_KINDS:
                kind = _BLOCK_KINDS[token.type]
                if token.type == "fence" and token.info.strip().startswith("{"):
                    kind = SegmentKind.PARAGRAPH  # a MyST directive ({note}, {tip}...): prose in a fence
                    start, end = _directive_body(text, lines, token.map, token.markup)
                start, end = trim_span(text, start, end)
                if end > start:
                    segments.append(Segment(start, end, kind))
        i += 1
    return segments, front.get("title") if isinstance(front.get("title"), str) else first_h1, front


def _definition_segments(tokens: list[Any], i: int, text: str, lines: list[int], segments: list[Segment]) -> int:
    """Segments of the definition list opened at tokens[i]. A term (an option's spellings on
    one line) and the first paragraph of its definition are one list-item segment, so that the
    sentence saying what an option does names the option; the definition's later blocks are
    segments of their own kinds (its code stays code, its later paragraphs, indented under the
    term, are never taken for indented code). Returns the index after the list."""
    term: int | None = None  # the start of a term whose definition has not begun
    i += 1
    while i < len(tokens) and not (tokens[i].type == "dl_close" and tokens[i].level == 0):
        token = tokens[i]
        i += 1
        if not token.map:
            continue
        if token.type == "dt_open" and token.level == 1:
            if term is not None:  # a term without a paragraph to open its definition
                _add_segment(text, term, lines[token.map[0]], SegmentKind.LIST_ITEM, segments)
            term = lines[token.map[0]]
        elif token.type == "list_item_open" and token.level == 3:
            _add_segment(text, lines[token.map[0]], lines[token.map[1]], SegmentKind.LIST_ITEM, segments)
        elif token.level == 2 and token.type in _BLOCK_KINDS:
            start, end = lines[token.map[0]], lines[token.map[1]]
            kind = _BLOCK_KINDS[token.type]
            if term is not None and token.type == "paragraph_open":
                start, kind = term, SegmentKind.LIST_ITEM
            elif term is not None:
                _add_segment(text, term, start, SegmentKind.LIST_ITEM, segments)
            term = None
            _add_segment(text, start, end, kind, segments)
    if term is not None:
        _add_segment(text, term, lines[-1], SegmentKind.LIST_ITEM, segments)
    return i + 1


def _add_segment(text: str, start: int, end: int, kind: SegmentKind, segments: list[Segment]) -> None:
    start, end = trim_span(text, start, end)
    if end > start:
        segments.append(Segment(start, end, kind))


def _directive_body(text: str, lines: list[int], line_map: list[int], markup: str) -> tuple[int, int]:
    """The lines inside a MyST directive's fence: without the ```{note} line that opens it and
    the fence that closes it, which are markup, not a sentence of the note."""
    first, after = line_map
    last = text[lines[after - 1] : lines[after]].strip()
    closed = after - 1 > first and last.startswith(markup) and set(last) <= set(markup[:1])
    return lines[first + 1], lines[after - 1] if closed else lines[after]


def _front_matter(content: str) -> dict[str, Any]:
    try:
        import yaml

        data = yaml.safe_load(content)
    except Exception:  # front matter that is not YAML is simply not metadata
        return {}
    return data if isinstance(data, dict) else {}


def read_markdown(raw: bytes, path: Path) -> Parsed:
    text = decode_utf8(raw, path)
    segments, title, front = markdown_segments(text)
    return Parsed(text, "markdown", segments, title, metadata=front)
