"""PDF: the pages' text, its lines grouped into paragraphs and headings; running heads, page
numbers and the table of contents are chrome."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

from ingest.errors import CorpusError
from ingest.readers.parsed import Parsed, Segment, SegmentKind
from ingest.readers.pdf_contents import (
    _chapter_openers,
    _contents_lines,
    _contents_titles,
    _listed_headings,
    _name_of_lines,
    _true_headings,
)
from ingest.readers.pdf_pages import (
    PAGE_NUMBER,
    _edge_lines,
    _heads_with_page_numbers,
    _is_numbered_heading,
    _pdf_lines,
    _pdf_pages,
)


def pdf_segments(text: str, pages: tuple[int, ...], soft_hyphens: frozenset[int] = frozenset()) -> list[Segment]:
    """Lines grouped into paragraphs: a paragraph ends at a line that ends a sentence and is
    clearly shorter than the page's full lines, or before a numbered heading. Lines that open
    or close many pages alike (running heads and feet), head or foot lines that carry the page
    number, and bare page numbers are chrome. A heading that ends in a hyphen goes on over the
    next line ('5.9 Moving, ..., and reintro-' / 'ducing packages'); its name reads the word
    whole where the hyphen is the typesetter's (`soft_hyphens`). A line that the table of
    contents lists as a numbered heading is one, on up to three lines, and so is a chapter
    opener ('CHAPTER' / 'FIVE' / its title, or 'Chapter 5' over a listed title). A chrome line
    ends the paragraph before it, so that segments come in the document's order and no
    paragraph holds a contents line or a page number."""
    bounds = [*pages, len(text)]
    page_lines = [_pdf_lines(text[bounds[p] : bounds[p + 1]], bounds[p]) for p in range(len(pages))]
    heads = Counter(text[a:b] for lines in page_lines for a, b in set(_edge_lines(lines)))
    running = {head for head, count in heads.items() if count >= max(3, len(pages) // 5)}
    numbered = _heads_with_page_numbers(text, page_lines)
    edges = {line for lines in page_lines for line in _edge_lines(lines)}
    furniture = {
        (a, b)
        for lines in page_lines
        for a, b in lines
        if (a, b) in edges and (text[a:b] in running or PAGE_NUMBER.match(text[a:b]) or (a, b) in numbered)
    }
    contents = _contents_lines(text, page_lines, furniture)
    chrome = furniture | contents
    titles = _contents_titles(text, contents)
    openers = _chapter_openers(text, page_lines, chrome, titles, soft_hyphens)
    listed = _listed_headings(text, page_lines, chrome, titles)
    headings = _true_headings(
        text,
        [
            line
            for lines in page_lines
            for line in lines
            if line in openers or line in listed or (line not in chrome and _is_numbered_heading(text[slice(*line)]))
        ],
        {line: (number,) for line, (_, _, number) in openers.items()},
    )
    segments: list[Segment] = []
    for lines in page_lines:
        full = max((b - a for a, b in lines), default=0)
        paragraph: tuple[int, int] | None = None
        opened_to = -1  # the end of a heading set on more than one line: its lines are the heading
        for number, (a, b) in enumerate(lines):
            line = text[a:b]
            if b <= opened_to:
                continue
            if (a, b) in chrome:  # it ends the paragraph it interrupts, which never spans it
                if paragraph:
                    segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
                    paragraph = None
                segments.append(Segment(a, b, SegmentKind.CHROME))
                continue
            if (a, b) in openers:
                if paragraph:
                    segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
                    paragraph = None
                opened_to, name, _ = openers[(a, b)]
                segments.append(Segment(a, opened_to, SegmentKind.HEADING, 1, name))
                continue
            if (a, b) in headings:
                if paragraph:
                    segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
                    paragraph = None
                level = 1 if line.startswith(("Chapter", "Appendix", "Part")) else line.split()[0].count(".") + 1
                following = lines[number + 1] if number + 1 < len(lines) else None
                if listed.get((a, b), (a, b)) != (a, b):
                    opened_to = b = listed[(a, b)][1]
                elif line.endswith("-") and following and following not in chrome and following not in headings:
                    opened_to = b = following[1]
                segments.append(Segment(a, b, SegmentKind.HEADING, level, _name_of_lines(text, a, b, soft_hyphens)))
                continue
            paragraph = (paragraph[0], b) if paragraph else (a, b)
            if line[-1] in ".:!?" and b - a < 0.8 * full:
                segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
                paragraph = None
        if paragraph:
            segments.append(Segment(*paragraph, SegmentKind.PARAGRAPH))
    return segments


def _typeset_hyphens(text: str, candidates: list[int]) -> tuple[int, ...]:
    """Of the line-end hyphens PDFium takes for the typesetter's, those that are: PDFium marks
    every hyphen that ends a line, 'stable-' / 'backports' and 'Non-' / 'Maintainer' too. A
    hyphen belongs to the words when the document writes them hyphenated elsewhere more often
    than as one word, or, never written either way, when the next word is capitalised. (One
    pass over the text counts its words and hyphenated pairs.)"""
    if not candidates:
        return ()
    lowered = text.lower()
    words = Counter(re.findall(r"\w+", lowered))
    hyphenated: Counter[str] = Counter()
    for compound in re.findall(r"\w+(?:-\w+)+", lowered):
        parts = compound.split("-")
        hyphenated.update(f"{a}-{b}" for a, b in itertools.pairwise(parts))
    kept = []
    for hyphen in candidates:
        before = re.search(r"\w+$", text[max(0, hyphen - 60) : hyphen])
        after = re.match(r"\s*(\w+)", text[hyphen + 1 : hyphen + 60])
        if before and after:
            first, second = before.group(), after.group(1)
            joined, pair = words[(first + second).lower()], hyphenated[f"{first}-{second}".lower()]
            if pair > joined or (pair == joined == 0 and second[0].isupper()):
                continue
        kept.append(hyphen)
    return tuple(kept)


def read_pdf(raw: bytes, path: Path) -> Parsed:
    pages, title = _pdf_pages(raw, path)
    starts: list[int] = []
    parts: list[str] = []
    soft: list[int] = []
    position = 0
    for page, hyphens in pages:
        starts.append(position)
        parts.append(page)
        soft.extend(position + h for h in hyphens)
        position += len(page) + 2
    text = "\n\n".join(parts)
    if not text.strip():
        raise CorpusError(f"{path}: no extractable text (a scanned or image-only PDF?)")
    typeset = _typeset_hyphens(text, soft)
    segments = pdf_segments(text, tuple(starts), frozenset(typeset))
    return Parsed(text, "pdf", segments, title, tuple(starts), soft_hyphens=typeset)
