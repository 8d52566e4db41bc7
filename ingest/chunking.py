"""Cut a document's indexed blocks into passages that never cross a section or speaker."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from ingest.documents import Document
from ingest.sentences import sentence_pieces
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
            runs[-1] = Run(last.start, block.end, *key)
        else:
            runs.append(Run(block.start, block.end, *key))
        previous_indexed = True
    return runs


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


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
        run_text = document.text[run.start : run.end]
        pieces = sentence_pieces(run_text, settings.max_chars)
        sentences.extend(
            Sentence(document.doc_id, run.start + a, run.start + b)
            for a, b in pieces
            if not _names_only_the_speaker(run_text[a:b], run.speaker)
        )
        for rel_start, rel_end in pack_pieces(pieces, settings):
            start, end = _trimmed(document.text, run.start + rel_start, run.start + rel_end)
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
    document: Document, settings: ChunkerSettings
) -> tuple[list[Block], list[Chunk], list[Sentence]]:
    blocks = parse_blocks(document.text)
    chunks, sentences = chunk_blocks(document, blocks, settings)
    return blocks, chunks, sentences
