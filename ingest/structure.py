"""Split a document into blocks with exact offsets and classify them by general layout rules.

The rules target interview-shaped articles: section headings, attribution lines that
name who speaks, quotations running over several paragraphs, pull-quotes that repeat a
sentence, and boilerplate blocks (glossaries, captions) repeated verbatim. Nothing here
knows any particular article.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

OPENING_QUOTES = '“"«„'
CLOSING_QUOTES = '”"»“'
HEADING_MAX_CHARS = 120
HEADING_MAX_WORDS = 16
ATTRIBUTION_MAX_CHARS = 200
NAME_MAX_WORDS = 5
PULL_QUOTE_MIN_WORDS = 6
NAME_PARTICLES = {"al", "el", "de", "da", "del", "der", "di", "du", "van", "von", "bin", "ibn", "le", "la"}


class BlockKind(StrEnum):
    BODY = "body"
    HEADING = "heading"
    ATTRIBUTION = "attribution"
    QUOTE = "quote"
    PULL_QUOTE = "pull_quote"
    BOILERPLATE = "boilerplate"


INDEXED_KINDS = {BlockKind.BODY, BlockKind.ATTRIBUTION, BlockKind.QUOTE, BlockKind.BOILERPLATE}


@dataclass(frozen=True)
class Block:
    start: int
    end: int
    text: str
    kind: BlockKind
    section: str | None
    speaker: str | None
    duplicate_of: int | None = None  # index of the first occurrence, for repeated boilerplate

    @property
    def indexed(self) -> bool:
        return self.kind in INDEXED_KINDS and self.duplicate_of is None


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str


def split_spans(text: str) -> list[Span]:
    """Paragraph spans with running offsets: blank-line separated if the text uses blank
    lines between paragraphs, one line per paragraph otherwise. Surrounding whitespace is
    excluded from each span."""
    uses_blank_lines = re.search(r"\n[ \t]*\r?\n", text) is not None
    separator = re.compile(r"\n[ \t\r]*\n\s*" if uses_blank_lines else r"\n")
    spans: list[Span] = []
    position = 0
    for match in [*separator.finditer(text), None]:
        piece_end = match.start() if match else len(text)
        start, end = position, piece_end
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append(Span(start, end, text[start:end]))
        if match:
            position = match.end()
    return spans


def normalise(text: str) -> str:
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"[“”«»„\"]", "", text)
    return re.sub(r"\s+", " ", text).strip().casefold()


def _words(text: str) -> list[str]:
    return text.split()


def opens_quote(text: str) -> bool:
    return text[:1] in OPENING_QUOTES


def closes_quote(text: str) -> bool:
    return text.rstrip()[-1:] in CLOSING_QUOTES and len(text.strip()) > 1


def is_heading_like(text: str) -> bool:
    """Short, one line, no sentence-final punctuation (a question mark is allowed)."""
    stripped = text.strip()
    if not stripped or "\n" in stripped or len(stripped) > HEADING_MAX_CHARS:
        return False
    if len(_words(stripped)) > HEADING_MAX_WORDS or opens_quote(stripped):
        return False
    if not any(ch.isalpha() for ch in stripped):
        return False
    return stripped[-1] not in ".,;:!…)”\"'’»"


def _looks_like_name(candidate: str) -> bool:
    words = _words(candidate)
    if not 1 <= len(words) <= NAME_MAX_WORDS:
        return False
    capitalised = 0
    for word in words:
        head = word.split("-")[0].strip(".")
        if not head or any(ch.isdigit() for ch in word):
            return False
        if head[0].isupper():
            capitalised += 1
        elif head.casefold() not in NAME_PARTICLES:
            return False
    return capitalised >= 1


def speaker_name(line: str) -> str | None:
    """The person an attribution line names: 'Name, description:', 'description Name:',
    'Name:' or a bare 'Name'."""
    body = line.strip().rstrip(":").strip()
    if not body:
        return None
    if "," in body:
        head = body.split(",", 1)[0].strip()
        if _looks_like_name(head):
            return head
    if _looks_like_name(body):
        return body
    # 'Israeli military expert Jane Doe': the trailing run of capitalised words.
    trailing: list[str] = []
    for word in reversed(_words(body)):
        if word[:1].isupper() or word.casefold() in NAME_PARTICLES:
            trailing.insert(0, word)
        else:
            break
    while trailing and trailing[0].casefold() in NAME_PARTICLES:
        trailing.pop(0)
    if 2 <= len(trailing) <= NAME_MAX_WORDS:
        return " ".join(trailing)
    return None


def attribution_speaker(text: str, next_text: str | None) -> str | None:
    """A speaker if `text` is an attribution line introducing the quotation in `next_text`."""
    if next_text is None or not opens_quote(next_text) or "\n" in text.strip():
        return None
    stripped = text.strip()
    if len(stripped) > ATTRIBUTION_MAX_CHARS or opens_quote(stripped):
        return None
    if stripped.endswith(":") or (_looks_like_name(stripped) and stripped[-1] not in ".!?"):
        return speaker_name(stripped)
    return None


class SpeakerRegistry:
    """Resolves short forms ('Smith:') to the full name seen earlier ('Jane Smith')."""

    def __init__(self) -> None:
        self._names: list[str] = []

    def resolve(self, name: str) -> str:
        for known in self._names:
            if known.casefold() == name.casefold():
                return known
        surname_matches = [k for k in self._names if _words(k)[-1].casefold() == _words(name)[-1].casefold()]
        if len(_words(name)) == 1 and len(surname_matches) == 1:
            return surname_matches[0]
        self._names.append(name)
        return name


def _boilerplate_first_occurrence(spans: list[Span], attribution_like: set[int]) -> dict[int, int]:
    """Map each repeated block (by normalised text) to its first occurrence's index."""
    keys = [normalise(s.text) for s in spans]
    counts = Counter(k for i, k in enumerate(keys) if i not in attribution_like)
    first: dict[str, int] = {}
    result: dict[int, int] = {}
    for i, key in enumerate(keys):
        if i in attribution_like or counts[key] < 2:
            continue
        first.setdefault(key, i)
        result[i] = first[key]
    return result


def _quote_close_index(spans: list[Span], start: int, skip: set[int], attributions: set[int]) -> int:
    """Index of the block that closes the quotation opened at `start`: the first block ending
    with a closing mark once opening and closing curly marks balance. An unclosed quotation
    (another attribution or the end arrives first) is taken to be one paragraph long."""
    depth = 0
    for i in range(start, len(spans)):
        if i != start and (i in attributions):
            break
        if i in skip:
            continue
        text = spans[i].text
        # Typographic convention: each continued paragraph may re-open with a quote mark.
        counted = text[1:] if i != start and opens_quote(text) and depth > 0 else text
        depth += counted.count("“") + counted.count("«") - counted.count("”") - counted.count("»")
        if closes_quote(text) and depth <= 0:
            return i
        if counted.count('"') % 2 == 1 and text.rstrip().endswith('"') and i != start:
            return i
    return start


def parse_blocks(text: str) -> list[Block]:
    """Classify every paragraph of `text`; offsets are the spans' running positions."""
    spans = split_spans(text)
    next_texts = [spans[i + 1].text if i + 1 < len(spans) else None for i in range(len(spans))]
    attribution_names = {
        i: name for i, s in enumerate(spans) if (name := attribution_speaker(s.text, next_texts[i])) is not None
    }
    repeated = _boilerplate_first_occurrence(spans, set(attribution_names))
    body_keys = [normalise(s.text) for i, s in enumerate(spans) if i not in repeated]

    def repeats_body_sentence(i: int) -> bool:
        key = normalise(spans[i].text).rstrip("?!.")
        if len(_words(key)) < PULL_QUOTE_MIN_WORDS:
            return False
        own = normalise(spans[i].text)
        return any(key in other and other != own for other in body_keys)

    heading_like = {i for i, s in enumerate(spans) if is_heading_like(s.text) and i not in attribution_names}
    skip_inside_quote = set(repeated) | heading_like

    blocks: list[Block] = []
    registry = SpeakerRegistry()
    section: str | None = None
    speaker: str | None = None  # set by an attribution line, consumed by the quotation
    quote_speaker: str | None = None
    quote_close = -1
    for i, span in enumerate(spans):
        kind: BlockKind
        block_speaker: str | None = None
        duplicate_of = repeated.get(i)
        in_quote = quote_close >= i
        if duplicate_of is not None:
            kind = BlockKind.BOILERPLATE
            if duplicate_of == i:
                duplicate_of = None
        elif i in attribution_names:
            kind = BlockKind.ATTRIBUTION
            speaker = registry.resolve(attribution_names[i])
            block_speaker = speaker
            quote_close = -1
        elif i in heading_like:
            after_boilerplate = i > 0 and (i - 1) in repeated
            if in_quote or after_boilerplate or repeats_body_sentence(i):
                kind = BlockKind.PULL_QUOTE
                block_speaker = quote_speaker if in_quote else None
            else:
                kind = BlockKind.HEADING
                section = span.text
                speaker = None
        elif in_quote:
            kind = BlockKind.QUOTE
            block_speaker = quote_speaker
        elif opens_quote(span.text) and speaker is not None:
            kind = BlockKind.QUOTE
            quote_speaker = block_speaker = speaker
            quote_close = _quote_close_index(spans, i, skip_inside_quote, set(attribution_names))
            speaker = None
        else:
            kind = BlockKind.BODY
            speaker = None
        blocks.append(Block(span.start, span.end, span.text, kind, section, block_speaker, duplicate_of))
    return blocks
