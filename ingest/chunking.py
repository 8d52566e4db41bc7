"""Cut a document's indexed blocks into passages that never cross a section or speaker."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from ingest.documents import Document
from ingest.readers import trim_span
from ingest.sentences import line_pieces, sentence_pieces
from ingest.structure import Block, BlockKind, parse_blocks


@dataclass(frozen=True)
class ChunkerSettings:
    max_chars: int = 1000
    overlap_chars: int = 0  # measured: overlap lets a neighbour hide the answering passage

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    section: str | None
    speaker: str | None
    kind: str  # "narrative", "quote" or "boilerplate"


@dataclass(frozen=True)
class Sentence:
    """A sentence (or a piece of an over-long one) of indexed text, for answer highlighting."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Run:
    """Consecutive indexed blocks sharing section, speaker and kind of content."""

    start: int
    end: int
    section: str | None
    speaker: str | None
    kind: str
    blocks: tuple[Block, ...] = ()


def _content_kind(block: Block) -> str:
    if block.kind is BlockKind.BOILERPLATE:
        return "boilerplate"
    return "quote" if block.speaker is not None else "narrative"


def group_runs(blocks: list[Block]) -> list[Run]:
    runs: list[Run] = []
    previous_indexed = False
    for block in blocks:
        if not block.indexed:
            previous_indexed = False
            continue
        key = (block.section, block.speaker, _content_kind(block))
        last = runs[-1] if runs else None
        if previous_indexed and last and (last.section, last.speaker, last.kind) == key:
            runs[-1] = Run(last.start, block.end, *key, (*last.blocks, block))
        else:
            runs.append(Run(block.start, block.end, *key, (block,)))
        previous_indexed = True
    return runs


@dataclass(frozen=True)
class Piece:
    start: int
    end: int
    glue: bool = False  # kept in one passage with the next piece when the two fit
    sentence: bool = True  # a candidate answer (prose sentences, table rows; not code)


def _units(pieces: list[Piece], max_chars: int) -> list[tuple[int, int]]:
    """Pieces joined by glue into units that fit in max_chars: an introducing sentence with its
    code block, a table's rows."""
    units: list[tuple[int, int]] = []
    first = 0
    while first < len(pieces):
        last = first
        while pieces[last].glue and last + 1 < len(pieces) and pieces[last + 1].end - pieces[first].start <= max_chars:
            last += 1
        units.append((pieces[first].start, pieces[last].end))
        first = last + 1
    return units


def pack_pieces(pieces: list[tuple[int, int]], settings: ChunkerSettings) -> list[tuple[int, int]]:
    """Greedy windows of whole pieces up to max_chars; each window after the first starts
    with as many trailing pieces of the previous one as fit in overlap_chars."""
    windows: list[tuple[int, int]] = []
    first = 0
    while first < len(pieces):
        last = first
        while last + 1 < len(pieces) and pieces[last + 1][1] - pieces[first][0] <= settings.max_chars:
            last += 1
        windows.append((pieces[first][0], pieces[last][1]))
        if last + 1 >= len(pieces):
            break
        next_first = last + 1
        while next_first - 1 > first and pieces[last][1] - pieces[next_first - 1][0] <= settings.overlap_chars:
            next_first -= 1
        first = next_first
    return windows


def block_pieces(text: str, block: Block, max_chars: int) -> list[Piece]:
    """A block's pieces, offsets into the document: sentences of prose; rows of a table (glued,
    so a table that fits stays whole); a code block whole (by lines if too long)."""
    if block.form == "table":
        rows = line_pieces(block.text, max_chars)
        return [Piece(block.start + a, block.start + b, glue=True) for a, b in rows]
    if block.form == "code":
        lines = line_pieces(block.text, max_chars)
        if block.end - block.start <= max_chars:
            return [Piece(block.start, block.end, sentence=False)]
        return [Piece(block.start + a, block.start + b, glue=True, sentence=False) for a, b in lines]
    return [Piece(block.start + a, block.start + b) for a, b in sentence_pieces(block.text, max_chars)]


def run_pieces(text: str, blocks: list[Block], max_chars: int) -> list[Piece]:
    pieces: list[Piece] = []
    for block in blocks:
        own = block_pieces(text, block, max_chars)
        if own and pieces and block.form == "code" and pieces[-1].sentence:
            # The sentence before a code block introduces it: keep them together.
            pieces[-1] = Piece(pieces[-1].start, pieces[-1].end, glue=True, sentence=True)
        if pieces and pieces[-1].glue and own and block.form not in ("code", "table"):
            last = pieces[-1]
            pieces[-1] = Piece(last.start, last.end, glue=False, sentence=last.sentence)
        pieces.extend(own)
    if pieces and pieces[-1].glue:
        pieces[-1] = Piece(pieces[-1].start, pieces[-1].end, glue=False, sentence=pieces[-1].sentence)
    return pieces


def _names_only_the_speaker(text: str, speaker: str | None) -> bool:
    """A bare attribution line ('Jane Roe:') says nothing the passage's speaker field does not;
    as a candidate answer it would match any question that names the speaker."""
    return speaker is not None and text.strip().rstrip(":").strip().casefold() == speaker.casefold()


def chunk_id(doc_id: str, start: int, end: int, text: str) -> str:
    digest = hashlib.sha256(f"{doc_id}\0{start}\0{end}\0{text}".encode()).hexdigest()[:12]
    return f"{doc_id}:{start}-{end}:{digest}"


def chunk_blocks(
    document: Document, blocks: list[Block], settings: ChunkerSettings
) -> tuple[list[Chunk], list[Sentence]]:
    chunks: list[Chunk] = []
    sentences: list[Sentence] = []
    for run in group_runs(blocks):
        pieces = run_pieces(document.text, list(run.blocks), settings.max_chars)
        sentences.extend(
            Sentence(document.doc_id, p.start, p.end)
            for p in pieces
            if p.sentence and not _names_only_the_speaker(document.text[p.start : p.end], run.speaker)
        )
        for start, end in pack_pieces(_units(pieces, settings.max_chars), settings):
            start, end = trim_span(document.text, start, end)
            if start == end:
                continue
            text = document.text[start:end]
            chunks.append(
                Chunk(
                    chunk_id=chunk_id(document.doc_id, start, end, text),
                    doc_id=document.doc_id,
                    text=text,
                    start=start,
                    end=end,
                    section=run.section,
                    speaker=run.speaker,
                    kind=run.kind,
                )
            )
    return chunks, sentences


def chunk_document(document: Document, settings: ChunkerSettings) -> tuple[list[Block], list[Chunk]]:
    blocks, chunks, _ = chunk_document_with_sentences(document, settings)
    return blocks, chunks


def chunk_document_with_sentences(
    document: Document, settings: ChunkerSettings, chrome: frozenset[str] = frozenset()
) -> tuple[list[Block], list[Chunk], list[Sentence]]:
    blocks = parse_blocks(document.text, document.segments, chrome)
    chunks, sentences = chunk_blocks(document, blocks, settings)
    return blocks, chunks, sentences
