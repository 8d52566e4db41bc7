"""Candidate generation: each signal's best passages for a question (dense and lexical pools)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ingest.embedding import Embedder
from ingest.index_store import LoadedIndex
from ingest.lexical import tokenize

CANDIDATES = 200  # per signal; exact for corpora up to this many passages


@dataclass
class Signals:
    """Per-query scores of the candidate passages from each signal."""

    dense: dict[int, float] = field(default_factory=dict)
    sentence: dict[int, float] = field(default_factory=dict)
    lexical: dict[int, float] = field(default_factory=dict)
    query: Any = None
    sentence_scores: dict[int, float] = field(default_factory=dict)
    coverage: float = 0.0
    # The query's BM25 tokens and the best passage BM25 in the corpus: enough to score any
    # passage or sentence on demand, without an array over the whole corpus per query.
    tokens: list[str] = field(default_factory=list)
    lexical_top: float = 0.0


class CandidateSource(Protocol):
    """Scores a question's candidate passages; `pool` candidates per signal (default CANDIDATES)."""

    def signals(self, question: str, pool: int | None = None) -> Signals: ...


class CandidatePools:
    """The passage and sentence vectors' nearest neighbours and the best BM25 passages."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, weighted_coverage: bool) -> None:
        self.index = index
        self.embedder = embedder
        self._weighted_coverage = weighted_coverage
        self._sentence_chunks: dict[int, list[int]] = {}
        for chunk_number, sentence_ids in enumerate(index.chunk_sentences):
            for sentence_id in sentence_ids:
                self._sentence_chunks.setdefault(sentence_id, []).append(chunk_number)

    def signals(self, question: str, pool: int | None = None) -> Signals:
        index = self.index
        pool = pool or CANDIDATES
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32).reshape(1, -1)
        signals = Signals(query=query[0])
        scores, ids = index.dense.search(query, min(pool, index.dense.ntotal))
        signals.dense = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
        scores, ids = index.sentence_dense.search(query, min(pool, index.sentence_dense.ntotal))
        signals.sentence_scores = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
        for sentence_id, score in signals.sentence_scores.items():
            for chunk_number in self._sentence_chunks.get(sentence_id, []):
                if score > signals.sentence.get(chunk_number, -1.0):
                    signals.sentence[chunk_number] = score
        signals.tokens = tokenize([question])[0]
        best, bm25 = index.lexical.best(signals.tokens, pool)
        if len(best):
            signals.lexical_top = top = float(bm25[0])
            signals.lexical = {int(i): float(s / top) for i, s in zip(best, bm25, strict=True)}
        signals.coverage = index.lexical.coverage(signals.tokens, weighted=self._weighted_coverage)
        return signals
