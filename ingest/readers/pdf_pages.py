"""A PDF's pages as text and lines (PDFium), the patterns its lines are told by, and the
running heads and feet that repeat on its pages."""

from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path
from typing import Any

from ingest.errors import CorpusError
from ingest.readers.parsed import trim_span

NUMBERED_HEADING = re.compile(r"^(?:Chapter|Appendix|Part|Section)\s+[\dA-Z]+[.:]?\s+\S|^\d+(?:\.\d+)*\.?\s+[A-Z/]")
TOC_LINE = re.compile(r"(?:\.\s?){3,}\s*\d+$")
PAGE_NUMBER = re.compile(r"^(?:page\s+)?[\divxlc]+(?:\s*(?:/|of)\s*\d+)?$", re.I)


GLUED_WORDS = re.compile(r"[a-z]{30,}")  # words run together: a justified line whose spaces the PDF does not encode


def _is_numbered_heading(line: str) -> bool:
    """'3.4. /boot : Static files', 'Chapter 2. The Filesystem'; not a table-of-contents line,
    nor a line that ends a clause (a footnote, a list item) or runs its words together."""
    return (
        bool(NUMBERED_HEADING.match(line))
        and len(line) <= 100
        and line[-1] not in ".,;:"
        and not TOC_LINE.search(line)
        and not GLUED_WORDS.search(line)
    )


# PDFium is not thread-safe: one document at a time in a process.
_PDFIUM = threading.Lock()


def _pdf_page_text(page: Any) -> tuple[str, list[int]]:
    """A page's text as PDFium reads it (spaces where the layout puts them, which a justified
    LaTeX line often does not encode as characters), lines ending in '\\n', and where the
    typesetter's hyphens are. PDFium joins a word hyphenated at a line's end, with U+FFFE where
    the hyphen and line break were: they are restored, so the text has the page's lines as
    printed, and their places kept."""
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
    finally:
        textpage.close()
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", ""))
    parts = text.split("\ufffe")
    soft: list[int] = []
    position = 0
    for part in parts[:-1]:
        position += len(part)
        soft.append(position)
        position += 2
    return "-\n".join(parts), soft


def _pdf_pages(raw: bytes, path: Path) -> tuple[list[tuple[str, list[int]]], str | None]:
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(raw)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise CorpusError(f"{path}: encrypted PDF (it needs a password to open)") from exc
            raise CorpusError(f"{path}: unreadable PDF ({exc})") from exc
        try:
            pages = [_pdf_page_text(document[number]) for number in range(len(document))]
            title = document.get_metadata_dict().get("Title")
        except pdfium.PdfiumError as exc:
            raise CorpusError(f"{path}: unreadable PDF ({exc})") from exc
        finally:
            document.close()
    return pages, title.strip() if isinstance(title, str) and title.strip() else None


def _pdf_lines(page: str, offset: int) -> list[tuple[int, int]]:
    spans = []
    position = 0
    for line in page.split("\n"):
        start, end = trim_span(page, position, position + len(line))
        if end > start:
            spans.append((offset + start, offset + end))
        position += len(line) + 1
    return spans


LEADING_NUMBER = re.compile(r"^(\d{1,4})\s+\S")
TRAILING_NUMBER = re.compile(r"\S\s+(\d{1,4})$")


# How many lines at the top and at the foot of a page may be its running head or foot.
EDGE_LINES = 2


def _edge_lines(lines: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The lines that may be a page's running head or foot: its first and last EDGE_LINES."""
    return lines if len(lines) <= 2 * EDGE_LINES else [*lines[:EDGE_LINES], *lines[-EDGE_LINES:]]


def _heads_with_page_numbers(text: str, page_lines: list[list[tuple[int, int]]]) -> set[tuple[int, int]]:
    """Head or foot lines that carry the page's printed number at one end ("Chapter 2: Library
    Functions 7", "34 Chapter 5. Managing Packages"): their words change with the chapter, but
    the number keeps step with the page. They are the edge lines whose number minus the page's
    index is the same on many pages."""
    by_offset: dict[int, list[tuple[int, int]]] = {}
    for index, lines in enumerate(page_lines):
        foot = set(lines[max(1, len(lines) - EDGE_LINES) :])
        for a, b in _edge_lines(lines):
            line = text[a:b]
            numbers = set()
            # "2 Library Functions" opening a page is a numbered heading, not a page number; a
            # page does not end with its own heading ("34 Chapter 5. Managing Packages" is a foot)
            if (leading := LEADING_NUMBER.search(line)) and ((a, b) in foot or not _is_numbered_heading(line)):
                numbers.add(int(leading[1]))
            if trailing := TRAILING_NUMBER.search(line):  # "1 Scope 3": the section's number, then the page's
                numbers.add(int(trailing[1]))
            for number in numbers:
                by_offset.setdefault(number - index, []).append((a, b))
    most = max(by_offset.values(), key=len, default=[])
    return set(most) if len(most) >= max(3, len(page_lines) // 5) else set()
