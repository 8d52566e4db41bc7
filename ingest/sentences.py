"""Sentence spans with running offsets, shared by the chunker and the answer highlighter."""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … (plus closing quotes/brackets), before whitespace and
# an upper-case letter, digit or opening quote, unless the period closes an abbreviation.
SENTENCE_END = re.compile(r"(?<=[.!?…])[”\"’')\]]*(?:\s+)(?=[“\"‘'(\[]?[A-Z0-9À-Ý])|\n+")
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "col", "lt", "sgt", "vs", "no", "mt", "ft"}
INITIALS = re.compile(r"(?:\b[A-Za-z]\.)+$")


def _is_abbreviation(text: str, boundary: int) -> bool:
    """True when the period just before `boundary` ends 'U.S.', 'J.', 'St.' and the like."""
    head = text[max(0, boundary - 12) : boundary]
    if not head.endswith("."):
        return False
    word = head.split()[-1] if head.split() else ""
    return bool(INITIALS.search(word)) or word[:-1].casefold() in ABBREVIATIONS


# Fallbacks for one sentence longer than the limit; each separator stays at the end of
# its piece, so the pieces concatenate back to the sentence exactly.
SEPARATORS = ["; ", ", ", " ", ""]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, whitespace between sentences excluded."""
    spans: list[tuple[int, int]] = []
    position = 0
    boundaries = [m for m in SENTENCE_END.finditer(text) if "\n" in m.group(0) or not _is_abbreviation(text, m.start())]
    for match in [*boundaries, None]:
        end = match.start() if match else len(text)
        if match and match.group(0)[:1] in "”\"’')]":
            # Closing marks belong to the sentence they close.
            end = match.start() + len(match.group(0)) - len(match.group(0).lstrip("”\"’')]"))
        start = position
        while start < end and text[start].isspace():
            start += 1
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        if stop > start:
            spans.append((start, stop))
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
        separators=SEPARATORS,
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
