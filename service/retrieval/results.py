"""What a search returns: ranked passages with their answer sentence and other sources."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.chunking import Chunk, Sentence
from ingest.documents import Document


@dataclass(frozen=True)
class Source:
    """Another place where a passage's exact text also lives."""

    doc_id: str
    title: str
    source: str
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    chunk: Chunk
    document: Document
    answer: Sentence | None = None
    also_in: tuple[Source, ...] = ()
    highlighted: bool = False  # the answer sentence is confident enough to highlight
    answer_confidence: float | None = None  # its calibrated probability of being right (rank 1 only)
    number: int | None = None  # the passage's number in the index (its sentences: index.chunk_sentences)


@dataclass(frozen=True)
class Answer:
    hits: list[Hit]
    answerable: bool
    confidence: float  # best cosine with a passage or sentence × share of question words the corpus knows
    reason: str | None = None  # why there is no answer, when there is none
