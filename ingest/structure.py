"""Classify a document's segments into blocks with exact offsets, by general layout rules.

The rules work on the typed segments a reader reports (or, for plain text, on paragraphs
found here): headings open sections (a heading path for nested levels); on prose only,
attribution lines name who speaks, quotations run over several paragraphs, and pull-quotes
repeating a sentence are not indexed; page chrome (a substantial block repeated, or a block
repeated across many documents) is indexed once. Nothing here knows any particular text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from ingest.readers import Segment, SegmentKind

OPENING_QUOTES = '“"«„'
CLOSING_QUOTES = '”"»“'
HEADING_MAX_CHARS = 120
HEADING_MAX_WORDS = 16
ATTRIBUTION_MAX_CHARS = 200
NAME_MAX_WORDS = 5
PULL_QUOTE_MIN_WORDS = 6
BOILERPLATE_MIN_WORDS = 10  # a shorter repeated line ("Returns: boolean") is content, not chrome
SECTION_SEPARATOR = " › "
PROSE = {SegmentKind.TEXT, SegmentKind.PARAGRAPH}
NAME_PARTICLES = {"al", "el", "de", "da", "del", "der", "di", "du", "van", "von", "bin", "ibn", "le", "la"}


class BlockKind(StrEnum):
    BODY = "body"
    HEADING = "heading"
    ATTRIBUTION = "attribution"
    QUOTE = "quote"
    PULL_QUOTE = "pull_quote"
    BOILERPLATE = "boilerplate"
    CHROME = "chrome"


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
    form: str = "text"  # the reader's segment kind: text, paragraph, list_item, code, table

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


def _boilerplate_first_occurrence(
    spans: list[Span], exempt: set[int], chrome: frozenset[str] = frozenset(), prose: list[bool] | None = None
) -> dict[int, int]:
    """Map each block of page chrome to its first occurrence's index: a block repeated in this
    document that is long enough to be more than a short recurring line, or one that repeats
    across many documents of the corpus (`chrome`, keys from `chrome_keys`)."""
    keys = [normalise(s.text) for s in spans]
    counts = Counter(k for i, k in enumerate(keys) if i not in exempt)
    repeats = [i not in exempt and counts[key] >= 2 for i, key in enumerate(keys)]
    prose = prose if prose is not None else [True] * len(spans)
    # A box of several repeated prose lines (a glossary, a caption with credit) is judged as one
    # block; a list item, table or code block only by itself (parameter lists repeat by design).
    substantial: set[int] = set()
    i = 0
    while i < len(spans):
        if not repeats[i]:
            i += 1
            continue
        j = i
        while prose[i] and j + 1 < len(spans) and repeats[j + 1] and prose[j + 1]:
            j += 1
        if sum(len(_words(keys[n])) for n in range(i, j + 1)) >= BOILERPLATE_MIN_WORDS:
            substantial.update(range(i, j + 1))
        i = j + 1
    first: dict[str, int] = {}
    result: dict[int, int] = {}
    for i, key in enumerate(keys):
        # One word repeated across the corpus is a label ("Note" over an admonition), part of
        # the passage it heads; page furniture says more than that.
        furniture = key in chrome and len(_words(key)) > 1
        if i in exempt or not (i in substantial or furniture):
            continue
        first.setdefault(key, i)
        result[i] = first[key]
    return result


def chrome_keys(texts_by_document: list[list[str]], min_documents: int = 3) -> frozenset[str]:
    """Blocks that recur in at least half of the documents (and in `min_documents`): footers,
    navigation, licence lines."""
    counts: Counter[str] = Counter()
    for texts in texts_by_document:
        counts.update({normalise(t) for t in texts})
    threshold = max(min_documents, (len(texts_by_document) + 1) // 2)
    return frozenset(key for key, count in counts.items() if count >= threshold and key)


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


@dataclass(frozen=True)
class Typed:
    span: Span
    kind: SegmentKind
    level: int = 0
    name: str | None = None


def typed_spans(text: str, segments: list[Segment] | None) -> list[Typed]:
    if segments is None:
        return [Typed(span, SegmentKind.TEXT) for span in split_spans(text)]
    return [Typed(Span(s.start, s.end, text[s.start : s.end]), s.kind, s.level, s.name) for s in segments]


class SectionPath:
    """The open headings, outermost first: a heading closes every open one of its level or deeper."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, name: str) -> str:
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, name))
        return SECTION_SEPARATOR.join(n for _, n in self._open)


INFERRED_HEADING_LEVEL = 9  # a heading found by layout inside a structured document: below the real ones


def parse_blocks(text: str, segments: list[Segment] | None = None, chrome: frozenset[str] = frozenset()) -> list[Block]:
    """Classify every segment of `text` (its paragraphs, for plain text); offsets are the
    segments' running positions."""
    typed = typed_spans(text, segments)
    spans = [t.span for t in typed]
    prose = [t.kind in PROSE for t in typed]
    next_texts = [spans[i + 1].text if i + 1 < len(spans) and prose[i + 1] else None for i in range(len(spans))]
    attribution_names = {
        i: name
        for i, s in enumerate(spans)
        if prose[i] and (name := attribution_speaker(s.text, next_texts[i])) is not None
    }
    chrome_spans = {i for i, t in enumerate(typed) if t.kind is SegmentKind.CHROME}
    repeated = _boilerplate_first_occurrence(spans, set(attribution_names) | chrome_spans, chrome, prose)
    body_keys = [normalise(s.text) for i, s in enumerate(spans) if i not in repeated and prose[i]]

    def repeats_body_sentence(i: int) -> bool:
        key = normalise(spans[i].text).rstrip("?!.")
        if len(_words(key)) < PULL_QUOTE_MIN_WORDS:
            return False
        own = normalise(spans[i].text)
        return any(key in other and other != own for other in body_keys)

    declared = {i for i, t in enumerate(typed) if t.kind is SegmentKind.HEADING}
    inferred = {
        i
        for i, t in enumerate(typed)
        if t.kind is SegmentKind.TEXT and is_heading_like(t.span.text) and i not in attribution_names
    }
    skip_inside_quote = set(repeated) | declared | inferred | chrome_spans

    blocks: list[Block] = []
    registry = SpeakerRegistry()
    path = SectionPath()
    section: str | None = None
    speaker: str | None = None  # set by an attribution line, consumed by the quotation
    quote_speaker: str | None = None
    quote_close = -1
    for i, (item, span) in enumerate(zip(typed, spans, strict=True)):
        kind: BlockKind
        block_speaker: str | None = None
        duplicate_of = repeated.get(i)
        in_quote = quote_close >= i
        if i in chrome_spans:
            kind = BlockKind.CHROME
        elif duplicate_of is not None:
            kind = BlockKind.BOILERPLATE
            if duplicate_of == i:
                duplicate_of = None
        elif i in attribution_names:
            kind = BlockKind.ATTRIBUTION
            speaker = registry.resolve(attribution_names[i])
            block_speaker = speaker
            quote_close = -1
        elif i in declared:
            kind = BlockKind.HEADING
            section = path.enter(item.level, item.name or span.text)
            speaker = quote_speaker = None
            quote_close = -1
        elif i in inferred:
            after_boilerplate = i > 0 and (i - 1) in repeated
            if in_quote or after_boilerplate or repeats_body_sentence(i):
                kind = BlockKind.PULL_QUOTE
                block_speaker = quote_speaker if in_quote else None
            else:
                kind = BlockKind.HEADING
                level = 1 if segments is None else INFERRED_HEADING_LEVEL
                section = path.enter(level, " ".join(span.text.split()))
                speaker = None
        elif in_quote and prose[i]:
            kind = BlockKind.QUOTE
            block_speaker = quote_speaker
        elif prose[i] and opens_quote(span.text) and speaker is not None:
            kind = BlockKind.QUOTE
            quote_speaker = block_speaker = speaker
            quote_close = _quote_close_index(spans, i, skip_inside_quote, set(attribution_names))
            speaker = None
        else:
            kind = BlockKind.BODY
            speaker = None
        blocks.append(
            Block(span.start, span.end, span.text, kind, section, block_speaker, duplicate_of, item.kind.value)
        )
    return blocks
