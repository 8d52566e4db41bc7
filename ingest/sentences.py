"""Sentence spans with running offsets, shared by the chunker and the answer highlighter.

pysbd (a rule-based segmenter: abbreviations, initials, numbers, URLs, ellipses) finds the
sentences. It sees a masked copy of the text of the same length, so its pieces map back to
offsets one for one: a line break inside a paragraph is a space, and the contents of inline
code and URLs cannot end a sentence. A blank line always ends one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from ingest.readers import trim_span

PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
UNBREAKABLE = re.compile(r"`[^`\n]+`|<?https?://[^\s<>]+|\b[\w.-]+@[\w-]+\.[\w.]+")
SEPARATORS = ["; ", ", ", " ", ""]  # fallbacks for one sentence longer than the limit


@lru_cache(maxsize=1)
def _segmenter() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _mask(text: str) -> str:
    """Same length as `text`: newlines as spaces, periods and such inside code and URLs as 'x'."""
    masked = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return UNBREAKABLE.sub(lambda m: re.sub(r"[.!?;:]", "x", m.group(0)), masked)


@lru_cache(maxsize=8192)
def _piece_lengths(masked: str) -> tuple[int, ...] | None:
    """Lengths of pysbd's pieces of one masked paragraph, None when they do not tile it. Cached:
    documentation repeats paragraphs (docker-doc's API versions: half its sentences are repeats),
    and pysbd, at about a millisecond a paragraph, was most of chunking's time."""
    pieces = _segmenter().segment(masked)
    if "".join(pieces) != masked:  # pysbd's tiling contract (clean=False); never guess offsets
        return None
    return tuple(len(piece) for piece in pieces)


def _paragraph_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    lengths = _piece_lengths(_mask(text[start:end]))
    if lengths is None:
        return [(start, end)]
    spans = []
    position = start
    for length in lengths:
        a, b = trim_span(text, position, position + length)
        if b > a:
            spans.append((a, b))
        position += length
    return spans


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, whitespace between sentences excluded."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in [*PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        a, b = trim_span(text, position, end)
        if b > a:
            spans.extend(_paragraph_sentences(text, a, b))
        if match:
            position = match.end()
    return spans


def split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Tile text[start:end] with pieces of at most max_chars, cut at the softest separator."""
    if end - start <= max_chars:
        return [(start, end)]
    from langchain_text_splitters import RecursiveCharacterTextSplitter  # only for the rare long sentence

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=max_chars,
        chunk_overlap=0,
        separators=["\n", *SEPARATORS],
        keep_separator="end",
        strip_whitespace=False,
    )
    pieces: list[tuple[int, int]] = []
    position = start
    for piece in splitter.split_text(text[start:end]):
        pieces.append((position, position + len(piece)))
        position += len(piece)
    if position != end:  # the splitter's tiling contract; never paper over a break in it
        raise AssertionError("text splitter did not tile its input")
    return pieces


def sentence_pieces(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Sentences of `text`, with any sentence longer than max_chars cut into pieces."""
    pieces: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        pieces.extend(split_long(text, start, end, max_chars))
    return pieces


def line_pieces(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Non-blank lines of `text` (table rows, code lines), over-long ones cut."""
    pieces: list[tuple[int, int]] = []
    position = 0
    for line in text.split("\n"):
        a, b = trim_span(text, position, position + len(line))
        if b > a:
            pieces.extend(split_long(text, a, b, max_chars))
        position += len(line) + 1
    return pieces
