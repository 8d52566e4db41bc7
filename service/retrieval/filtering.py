"""Filters: which passages may answer, and their signals alone (scored exactly when few)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ingest.chunking import Chunk
from ingest.errors import CiteqaError
from ingest.index_store import LoadedIndex
from service.retrieval import candidates
from service.retrieval.candidates import CandidateSource, Signals

# A filter that admits at most this many passages has them all scored exactly (a few MB of
# vectors); beyond, the candidate pools are enlarged instead.
DIRECT_SCORING_LIMIT = 5000


class UnknownDocument(CiteqaError):
    """A filter names a document that is not in the index."""


@dataclass(frozen=True)
class Filters:
    """Which passages may answer: those of these documents, under this section, by this speaker."""

    doc_ids: frozenset[str] | None = None
    section: str | None = None  # a prefix of the section path ("Configuration › Build"), any case
    speaker: str | None = None  # the speaker's name, any case

    def __post_init__(self) -> None:
        if self.doc_ids is not None:
            object.__setattr__(self, "doc_ids", frozenset(self.doc_ids))

    def admits(self, chunk: Chunk) -> bool:
        if self.doc_ids is not None and chunk.doc_id not in self.doc_ids:
            return False
        if self.section is not None and not (chunk.section or "").casefold().startswith(self.section.casefold()):
            return False
        return self.speaker is None or (chunk.speaker or "").casefold() == self.speaker.casefold()


class PassageFilter:
    """Applies `Filters` to an index's passages and to a question's signals."""

    def __init__(self, index: LoadedIndex, candidate_source: CandidateSource) -> None:
        self.index = index
        self.candidates = candidate_source
        self._document_chunks: dict[str, list[int]] = {}
        for number, chunk in enumerate(index.chunks):
            self._document_chunks.setdefault(chunk.doc_id, []).append(number)

    def unknown_documents(self, doc_ids: Iterable[str]) -> list[str]:
        return sorted({d for d in doc_ids if d not in self.index.documents})

    def admitted(self, filters: Filters) -> list[int]:
        """Numbers of the passages that a filter admits, in index order."""
        numbers: Iterable[int] = range(len(self.index.chunks))
        if filters.doc_ids is not None:
            unknown = self.unknown_documents(filters.doc_ids)
            if unknown:
                raise UnknownDocument(f"unknown document id: {', '.join(unknown)}")
            numbers = sorted(n for d in filters.doc_ids for n in self._document_chunks[d])
        return [n for n in numbers if filters.admits(self.index.chunks[n])]

    def filtered(self, question: str, signals: Signals, filters: Filters) -> Signals:
        """The signals of the admitted passages alone. The candidate pools hold the corpus's best
        passages and may hold none of a small document, so a small admitted set is scored
        exactly, from its stored vectors and BM25 scores; a large one is taken from pools
        enlarged in proportion to how small a share of the corpus it is."""
        admitted = self.admitted(filters)
        if len(admitted) <= DIRECT_SCORING_LIMIT or not admitted:
            return self._scored_exactly(signals, admitted)
        share = len(admitted) / len(self.index.chunks)
        pool = int(np.ceil(candidates.CANDIDATES / share))
        pooled = signals if share == 1 else self.candidates.signals(question, pool=pool)
        keep = set(admitted)
        sentences = {s for n in admitted for s in self.index.chunk_sentences[n]}
        return Signals(
            dense={n: s for n, s in pooled.dense.items() if n in keep},
            sentence={n: s for n, s in pooled.sentence.items() if n in keep},
            lexical={n: s for n, s in pooled.lexical.items() if n in keep},
            query=pooled.query,
            sentence_scores={i: s for i, s in pooled.sentence_scores.items() if i in sentences},
            coverage=pooled.coverage,
            tokens=pooled.tokens,
            lexical_top=pooled.lexical_top,
        )

    def _scored_exactly(self, signals: Signals, numbers: list[int]) -> Signals:
        index = self.index
        scored = Signals(
            query=signals.query,
            coverage=signals.coverage,
            tokens=signals.tokens,
            lexical_top=signals.lexical_top,
        )
        if not numbers:
            return scored
        cosines = index.dense.reconstruct_batch(np.asarray(numbers, dtype=np.int64)) @ signals.query
        scored.dense = {n: float(s) for n, s in zip(numbers, cosines, strict=True)}
        sentence_ids = list(dict.fromkeys(s for n in numbers for s in index.chunk_sentences[n]))
        if sentence_ids:
            cosines = index.sentence_dense.reconstruct_batch(np.asarray(sentence_ids, dtype=np.int64)) @ signals.query
            scored.sentence_scores = {i: float(s) for i, s in zip(sentence_ids, cosines, strict=True)}
            for n in numbers:
                if index.chunk_sentences[n]:
                    scored.sentence[n] = max(scored.sentence_scores[i] for i in index.chunk_sentences[n])
        top = signals.lexical_top
        if top > 0:  # normalised by the corpus's best, as unfiltered, so scores mean the same
            lexical = index.lexical.scores_of(signals.tokens, numbers)
            scored.lexical = {n: float(s / top) for n, s in zip(numbers, lexical, strict=True) if s > 0}
        return scored
