"""A passage's inline text as runs: each run of words carries its source offsets and marks.

markdown-it's inline tokens are aligned with the source left to right; what markup leaves
behind where a document's Markdown is not plain CommonMark (MyST roles, reference links whose
definition is missing) reads as the words it stands for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from markdown_it.token import Token

# MyST roles whose content is a name to read, not code to type: {ref}`Title <target>` reads "Title".
TEXT_ROLES = frozenset({"ref", "doc", "term", "any", "numref", "pep", "pypi", "abbr"})
_ROLE_SUFFIX = re.compile(r"\{([a-z][\w:+-]*)\}$")
_ROLE_TITLE = re.compile(r"^(.*?)\s*<[^<>]*>$", re.S)
# What a reference link leaves behind when its definition is nowhere in the document.
_DANGLING_WHOLE = re.compile(r"\[([^\[\]\n]+)\]\[[^\[\]\n]*\]")
_DANGLING_TAIL = re.compile(r"^\]\[[^\[\]\n]*\]")


@dataclass(slots=True)
class Run:
    text: str
    start: int
    end: int
    marks: tuple[str, ...] = ()
    exact: bool = True  # text == source[start:end]: the page may cut it at any offset

    def as_dict(self, text: str | None = None, start: int | None = None, end: int | None = None) -> dict[str, Any]:
        run: dict[str, Any] = {
            "text": self.text if text is None else text,
            "start": self.start if start is None else start,
            "end": self.end if end is None else end,
        }
        if self.marks:
            run["marks"] = list(self.marks)
        if not self.exact:
            run["exact"] = False
        return run


class _Inline:
    """Aligns an inline token's children with the source, left to right, from a cursor."""

    def __init__(self, text: str, lo: int, hi: int) -> None:
        self.text, self.cursor, self.hi = text, lo, hi
        self.marks: list[str] = []
        self.runs: list[Run] = []

    def add(self, content: str, extra: tuple[str, ...] = ()) -> None:
        if not content:
            return
        marks = tuple(self.marks) + extra
        at = self.text.find(content, self.cursor, self.hi)
        if 0 <= at <= self.cursor + 64:  # markup between runs is short: a far match is another place
            self.cursor = at + len(content)
            self.runs.append(Run(content, at, self.cursor, marks))
            return
        # Not verbatim (an escape, an entity, a code span over lines): match character by
        # character, each no further than a short skip, and keep the run's outer offsets.
        first, position = -1, self.cursor
        for ch in content:
            found = self._next(ch, position)
            if found is not None:
                first = found if first < 0 else first
                position = found + 1
        start = first if first >= 0 else self.cursor
        self.cursor = max(position, start)
        self.runs.append(Run(content, start, self.cursor, marks, exact=False))

    def _next(self, ch: str, position: int) -> int | None:
        limit = min(self.hi, position + 9)
        for at in range(position, limit):
            source = self.text[at]
            if source == ch or (ch.isspace() and source.isspace()):
                return at
        return None

    def skip(self, markup: str) -> None:
        if markup and self.text.startswith(markup, self.cursor):
            self.cursor += len(markup)

    def skip_link_tail(self) -> None:
        """Past a link's `](url "title")`, `][ref]` or `][]`, so that no URL is matched as text."""
        text, at = self.text, self.cursor
        if at < self.hi and text[at] == "]":
            at += 1
            if at < self.hi and text[at] == "(":
                depth = 0
                while at < self.hi:
                    depth += {"(": 1, ")": -1}.get(text[at], 0)
                    at += 1
                    if depth == 0:
                        break
            elif at < self.hi and text[at] == "[":
                close = text.find("]", at, self.hi)
                at = close + 1 if close >= 0 else at
        self.cursor = at

    def softbreak(self) -> None:
        at = self.text.find("\n", self.cursor, self.hi)
        if at >= 0:
            self.runs.append(Run(" ", at, at + 1, tuple(self.marks), exact=False))
            self.cursor = at + 1


_OPENING = {"em_open": "em", "strong_open": "strong", "link_open": "link"}
_CLOSING = {"em_close", "strong_close", "link_close"}


def inline_runs(token: Token, text: str, lo: int, hi: int) -> list[Run]:
    inline = _Inline(text, lo, hi)
    for child in token.children or []:
        kind = child.type
        if kind in ("text", "text_special"):
            inline.add(child.content)
        elif kind == "code_inline":
            inline.skip(child.markup)
            inline.add(child.content, ("code",))
            inline.skip(child.markup)
        elif kind in ("softbreak", "hardbreak"):
            inline.softbreak()
        elif kind in _OPENING:
            inline.skip(child.markup if kind != "link_open" else "[")
            inline.marks.append(_OPENING[kind])
        elif kind in _CLOSING:
            if inline.marks:
                inline.marks.pop()
            if kind == "link_close":
                inline.skip_link_tail()
            else:
                inline.skip(child.markup)
        elif kind == "image":
            inline.skip("![")
            inline.add(child.content, ("image",))
            inline.skip_link_tail()
        # html_inline: raw HTML is never shown, and never run
    return _dangling_references(_myst_roles(inline.runs))


def _dangling_references(runs: list[Run]) -> list[Run]:
    """`[text][]` and `[text][ref]` whose definition is missing read as their text."""
    out: list[Run] = []
    for run in runs:
        tail = _DANGLING_TAIL.match(run.text) if "code" not in run.marks else None
        opening = next((r for r in reversed(out[-4:]) if r.text.endswith("[") and "code" not in r.marks), None)
        if tail and opening is not None:
            opening.text = opening.text[:-1]
            opening.end -= opening.exact
            run.text = run.text[tail.end() :]
            run.start += tail.end() if run.exact else 0
        if "code" in run.marks or not run.exact or not _DANGLING_WHOLE.search(run.text):
            out.append(run)
            continue
        position = 0
        for found in _DANGLING_WHOLE.finditer(run.text):
            for lo, hi in ((position, found.start()), (found.start(1), found.end(1))):
                if hi > lo:
                    out.append(Run(run.text[lo:hi], run.start + lo, run.start + hi, run.marks))
            position = found.end()
        if position < len(run.text):
            out.append(Run(run.text[position:], run.start + position, run.end, run.marks))
    return [run for run in out if run.text]


def _myst_roles(runs: list[Run]) -> list[Run]:
    """`{ref}`Title <target>`` reads "Title": the role's name goes, the content stays."""
    for i in range(len(runs) - 1):
        run, following = runs[i], runs[i + 1]
        role = _ROLE_SUFFIX.search(run.text) if "code" in following.marks else None
        if role is None or following.start - run.end > 1:
            continue
        run.text = run.text[: role.start()]
        run.end -= len(role.group(0))
        name = role.group(1).split(":")[-1]
        if name in TEXT_ROLES:
            content = following.text
            titled = _ROLE_TITLE.match(content)
            following.text = (titled.group(1) if titled else content).lstrip("~!")
            following.exact = following.exact and following.text == content
            following.marks = tuple(m for m in following.marks if m != "code")
    return [run for run in runs if run.text]
