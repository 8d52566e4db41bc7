"""How a passage reads on the page: blocks of inline runs, each run carrying its source offsets.

A Markdown (or HTML, whose text is Markdown the reader made) document is parsed once, whole,
with markdown-it, so that a passage cut from the middle of a fence, a list or a MyST directive
is read in its context and reference links resolve against definitions far below it. A passage
is then the document's blocks clipped to its span. The page turns the model into DOM nodes
with textContent alone, and marks the answer where runs overlap the answer's source offsets:
nothing from a document ever becomes HTML.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.documents import Document
from service.display_runs import Run, inline_runs

DIRECTIVE_LABELS = {
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
    "seealso": "See also",
    "admonition": "",
}
CODE_DIRECTIVES = frozenset({"code-block", "code", "sourcecode", "code-cell", "pip-cli", "console"})
HIDDEN_DIRECTIVES = frozenset({"toctree", "contents", "include", "literalinclude", "image", "figure"})
_TARGET_LINE = re.compile(r"^\([\w.:-]+\)=$")  # a MyST label line: "(wheel-caching)="
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_DEFINITION = re.compile(r"^ {0,3}\[([^\]\n]+)\]:[ \t]*<?([^\s>]+)", re.M)
# Code that an HTML page's reader wrote after text on the same line ("Run ```\nmkdocs\n```"):
# markdown-it would show those backticks as text; parsed with the space before them a line break,
# it is the fence it was meant to be.
_INLINE_FENCE = re.compile(r"(?<=[^\s`])[ \t](?=```[ \t]*\n(?:[^\n]*\n){0,40}?```)")


@dataclass(slots=True)
class Block:
    kind: str  # paragraph (a definition's term too, its runs strong), heading, item, code, label, table
    runs: list[Run] = field(default_factory=list)
    rows: list[list[list[Run]]] = field(default_factory=list)  # tables: rows of cells of runs
    depth: int = 0  # list and quotation nesting
    marker: str = ""  # a list item's bullet or number
    level: int = 0  # a heading's level
    head: int = 0  # a table's header rows
    start: int = 0
    end: int = 0

    def span(self) -> None:
        runs = self.runs or [run for row in self.rows for cell in row for run in cell]
        if runs:
            self.start, self.end = min(r.start for r in runs), max(r.end for r in runs)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from mdit_py_plugins.deflist import deflist_plugin
    from mdit_py_plugins.front_matter import front_matter_plugin

    return MarkdownIt("commonmark").enable("table").use(front_matter_plugin).use(deflist_plugin)


def _line_starts(text: str, lo: int, hi: int) -> list[int]:
    starts = [lo]
    at = text.find("\n", lo, hi)
    while at >= 0:
        starts.append(at + 1)
        at = text.find("\n", at + 1, hi)
    starts.append(hi)
    return starts


def _definitions(text: str) -> dict[str, dict[str, str]]:
    """Every link reference definition of the document, also those inside a directive's body,
    which markdown-it reads apart from the rest."""
    from markdown_it.common.utils import normalizeReference

    return {normalizeReference(m.group(1)): {"href": m.group(2), "title": ""} for m in _DEFINITION.finditer(text)}


def _parse_text(text: str) -> str:
    """What markdown-it reads: the text, as long, with each `_INLINE_FENCE` kept inline."""
    breaks = [m.start() for m in _INLINE_FENCE.finditer(text)]
    if not breaks:
        return text
    chars = list(text)
    for at in breaks:
        chars[at] = "\n"
    return "".join(chars)


class _Walker:
    """Turns markdown-it's token stream of text[lo:hi] into blocks with absolute offsets."""

    def __init__(
        self,
        text: str,
        lo: int,
        hi: int,
        depth: int = 0,
        env: dict[str, Any] | None = None,
        parse_text: str | None = None,
    ) -> None:
        self.text, self.lo, self.hi, self.depth = text, lo, hi, depth
        self.env = env if env is not None else {"references": _definitions(text)}
        self.parse_text = parse_text if parse_text is not None else _parse_text(text)
        self.lines = _line_starts(self.parse_text, lo, hi)  # markdown-it's lines: inline fences break them
        self.blocks: list[Block] = []
        self.lists: list[list[int]] = []  # per open list: [ordered, next number]
        self.quotes = 0
        self.definitions = 0  # open <dd>s: a definition is indented under its term
        self.marker = ""

    def region(self, token: Token) -> tuple[int, int]:
        if not token.map:
            return self.lo, self.hi
        return self.lines[min(token.map[0], len(self.lines) - 1)], self.lines[min(token.map[1], len(self.lines) - 1)]

    def walk(self) -> list[Block]:
        tokens = _parser().parse(self.parse_text[self.lo : self.hi], dict(self.env))
        i = 0
        while i < len(tokens):
            i = self.step(tokens, i)
        for block in self.blocks:
            block.span()
        return [b for b in self.blocks if b.runs or b.rows]

    def nesting(self) -> int:
        return self.depth + len(self.lists) + self.quotes + self.definitions

    def step(self, tokens: list[Token], i: int) -> int:
        token = tokens[i]
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            self.lists.append([kind == "ordered_list_open", int(token.attrs.get("start", 1) or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
        elif kind == "list_item_open":
            ordered = self.lists[-1][0] if self.lists else False
            self.marker = f"{token.info or self.lists[-1][1]}{token.markup}" if ordered else "•"
        elif kind == "blockquote_open":
            self.quotes += 1
        elif kind == "blockquote_close":
            self.quotes -= 1
        elif kind in ("dd_open", "dd_close"):
            self.definitions += 1 if kind == "dd_open" else -1
        elif kind in ("paragraph_open", "heading_open", "dt_open"):
            return self.paragraph(tokens, i)
        elif kind in ("fence", "code_block"):
            self.code(token)
        elif kind == "table_open":
            return self.table(tokens, i)
        return i + 1

    def paragraph(self, tokens: list[Token], i: int) -> int:
        opening, inline = tokens[i], tokens[i + 1]
        lo, hi = self.region(opening)
        if opening.type == "dt_open":  # a term's map ends where it starts: its line is its region
            hi = self.region(inline)[1] if hi <= lo else hi
            end = self.text.find("\n", lo, self.hi)
            hi = max(hi, end if end >= 0 else self.hi)
        runs = inline_runs(inline, self.text, lo, hi)
        if opening.type == "dt_open":  # a term reads bold, as documentation shows it
            runs = [Run(r.text, r.start, r.end, (*r.marks, "strong"), r.exact) for r in runs]
        if opening.type == "heading_open":
            block = Block("heading", runs, depth=self.nesting(), level=int(opening.tag[1]))
        elif self.marker:
            block = Block("item", runs, depth=self.nesting(), marker=self.marker)
            self.marker = ""
        else:
            block = Block("paragraph", runs, depth=self.nesting())
        if not (len(runs) == 1 and _TARGET_LINE.match(runs[0].text)):
            self.blocks.append(block)
        return i + 3

    def code(self, token: Token) -> None:
        lo, hi = self.region(token)
        info = token.info.strip()
        directive = re.match(r"\{([\w:-]+)\}\s*(.*)", info) if token.type == "fence" else None
        if directive:
            self.directive(token, directive.group(1), directive.group(2), lo, hi)
            return
        if token.type == "fence":
            first = self.text.find("\n", lo, hi)
            lo = first + 1 if first >= 0 else hi
            closing = self.text.rfind("\n", lo, hi - 1)
            if closing >= lo and self.text[closing + 1 : hi].strip().startswith(token.markup):
                hi = closing + 1
        content = token.content.rstrip("\n")
        if not content.strip():
            return
        end = lo + len(content)
        exact = self.text[lo:end] == content
        run = Run(content, lo, end if exact else max(lo, hi - 1), ("code",), exact)
        self.blocks.append(Block("code", [run], depth=self.nesting()))

    def directive(self, token: Token, name: str, argument: str, lo: int, hi: int) -> None:
        """A MyST directive: its label ("Changed in version 23.3"), then its body as Markdown."""
        if name in HIDDEN_DIRECTIVES:
            return
        first = self.text.find("\n", lo, hi)
        body_lo = first + 1 if first >= 0 else hi
        last = self.text.rfind("\n", body_lo, hi - 1)
        body_hi = last + 1 if last >= body_lo and self.text[last + 1 : hi].strip() == token.markup else hi
        while body_lo < body_hi and self.text.startswith(":", body_lo):  # options (":class: tip")
            after = self.text.find("\n", body_lo, body_hi)
            body_lo = after + 1 if after >= 0 else body_hi
        if name in CODE_DIRECTIVES:
            content = self.text[body_lo:body_hi].rstrip("\n")
            if content.strip():
                run = Run(content, body_lo, body_lo + len(content), ("code",))
                self.blocks.append(Block("code", [run], depth=self.nesting()))
            return
        label = DIRECTIVE_LABELS.get(name, name.replace("-", " ").capitalize())
        label = " ".join(part for part in (label, argument.strip()) if part)
        if label:
            label_at = self.text.find("}", lo, hi) + 1
            run = Run(label, label_at, label_at + len(argument.strip()), ("strong",), exact=False)
            self.blocks.append(Block("label", [run], depth=self.nesting()))
        if body_hi > body_lo:
            self.blocks.extend(
                _Walker(self.text, body_lo, body_hi, self.nesting() + 1, self.env, self.parse_text).walk()
            )

    def table(self, tokens: list[Token], i: int) -> int:
        block = Block("table", depth=self.nesting())
        region = (self.lo, self.hi)
        in_head = False
        while i < len(tokens) and tokens[i].type != "table_close":
            token = tokens[i]
            if token.type == "thead_open":
                in_head = True
            elif token.type == "thead_close":
                in_head = False
            elif token.type == "tr_open":
                region = self.region(token)
                block.rows.append([])
                block.head += in_head
            elif token.type == "inline" and block.rows:
                block.rows[-1].append(inline_runs(token, self.text, *region))
                region = (block.rows[-1][-1][-1].end if block.rows[-1][-1] else region[0], region[1])
            i += 1
        self.blocks.append(block)
        return i + 1


def plain_blocks(text: str) -> list[Block]:
    """Text and PDF: paragraphs between blank lines, each one run of the source as it is."""
    blocks: list[Block] = []
    position = 0
    for gap in [*_PARAGRAPH_BREAK.finditer(text), None]:
        end = gap.start() if gap else len(text)
        if text[position:end].strip():
            blocks.append(Block("paragraph", [Run(text[position:end], position, end)], start=position, end=end))
        position = gap.end() if gap else end
    return blocks


def document_blocks(text: str, fmt: str) -> tuple[list[Block], list[int]]:
    """Every block of a document, and the running minimum of their ends for bisecting."""
    blocks = _Walker(text, 0, len(text)).walk() if fmt in ("markdown", "html") else plain_blocks(text)
    blocks.sort(key=lambda b: b.start)
    ends = [b.end for b in blocks]
    for i in range(len(ends) - 2, -1, -1):
        ends[i] = min(ends[i], ends[i + 1])
    return blocks, ends


class Displays:
    """Each document's blocks, parsed once. `warm` parses them all while the index loads, so
    that no question pays for a document's first parse (about 1.5 ms per 1,000 characters)."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[str, list[Block], list[int]]] = {}

    def warm(self, documents: Iterable[Document]) -> None:
        for document in documents:
            self._blocks(document)

    def _blocks(self, document: Document) -> tuple[list[Block], list[int]]:
        cached = self._parsed.get(document.doc_id)
        if cached is not None and cached[0] is document.text:  # the same generation's text
            return cached[1], cached[2]
        blocks, ends = document_blocks(document.text, document.format)
        self._parsed[document.doc_id] = (document.text, blocks, ends)
        return blocks, ends

    def passage(self, document: Document, start: int, end: int) -> list[dict[str, Any]]:
        """The blocks of document.text[start:end] as the page shows them."""
        blocks, ends = self._blocks(document)
        return passage_blocks(blocks, ends, start, end)


def _clipped(runs: list[Run], start: int, end: int) -> list[dict[str, Any]]:
    clipped = []
    for run in runs:
        if run.end <= start or run.start >= end:
            continue
        if run.exact and (run.start < start or run.end > end):
            lo, hi = max(run.start, start), min(run.end, end)
            clipped.append(run.as_dict(run.text[lo - run.start : hi - run.start], lo, hi))
        else:
            clipped.append(run.as_dict())
    return clipped


def passage_blocks(blocks: list[Block], ends: list[int], start: int, end: int) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = []
    for block in blocks[bisect.bisect_right(ends, start) :]:
        if block.start >= end:
            break
        if block.end <= start:
            continue
        out: dict[str, Any] = {"kind": block.kind}
        if block.kind == "table":
            rows = [[_clipped(cell, start, end) for cell in row] for row in block.rows]
            kept = [(n, row) for n, row in enumerate(rows) if any(row)]
            if not kept:
                continue
            out["rows"] = [row for _, row in kept]
            out["head"] = sum(1 for n, _ in kept if n < block.head)
        else:
            out["runs"] = _clipped(block.runs, start, end)
            if not out["runs"]:
                continue
        if block.depth:
            out["depth"] = block.depth
        if block.marker:
            out["marker"] = block.marker
        if block.level:
            out["level"] = block.level
        shown.append(out)
    return shown
