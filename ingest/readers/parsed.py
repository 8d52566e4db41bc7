"""What every reader returns (`Parsed`, with typed `Segment`s) and the decoding and span helpers
the readers share."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from ingest.errors import CorpusError


class SegmentKind(StrEnum):
    TEXT = "text"  # plain text: the layout rules decide what it is (heading, attribution, body)
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST_ITEM = "list_item"
    CODE = "code"
    TABLE = "table"
    CHROME = "chrome"  # running headers, page numbers: kept in the text, never indexed


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    kind: SegmentKind
    level: int = 0  # heading level, 1 for a document title
    name: str | None = None  # a heading's plain text (markup removed)


@dataclass(frozen=True)
class Parsed:
    text: str
    fmt: str
    segments: list[Segment] | None  # None: plain text, split and classified by the layout rules
    title: str | None = None
    pages: tuple[int, ...] = ()  # offset where each page starts (PDF)
    metadata: dict[str, Any] = field(default_factory=dict)
    # Offsets of hyphens the typesetter added to break a word at a line's end (PDF): the text
    # keeps them as printed; what is embedded and searched reads the word whole.
    soft_hyphens: tuple[int, ...] = ()


def decode_utf8(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    return document_text(text, path)


def document_text(text: str, path: Path) -> str:
    """Decoded text as every reader stores it: no NUL bytes (a binary file), no byte order
    mark, and NFC, so that offsets mean the same thing to every reader of the stored text."""
    if "\x00" in text:
        raise CorpusError(f"{path}: binary content (NUL bytes), not a text document")
    return unicodedata.normalize("NFC", text.removeprefix("\ufeff"))


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """text[start:end] without the whitespace at either end, as offsets."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
