"""Each sentence of a written answer checked against the passages it cites.

A cited passage supports a sentence when one of its sentences (or two in a row) says the same:
the sentence's meaning (its cosine with the claim, from the index's own sentence vectors and the
query encoder) and its words (the share of the claim's content words, weighted by their idf in
the corpus, found in those sentences). The supporting span is that sentence, with its offsets in
the document, so that it slices the document exactly like every other citation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ingest.lexical import tokenize
from service.retriever import Hit, Retriever

# A citation supports its sentence when SUPPORT_WEIGHT·cosine + (1 − SUPPORT_WEIGHT)·coverage
# reaches SUPPORTED. Chosen on the suite's tuning corpora (`citeqa eval --claims`,
# docs/eval/claims.md): an evidence sentence cited to a top-5 passage that does not hold it is
# the negative case, the same sentence cited to its passage reworded the positive one.
SUPPORT_WEIGHT = 0.6
SUPPORTED = 0.62


@dataclass(frozen=True)
class Support:
    """How well one cited passage supports one claim, and where."""

    marker: int
    hit: Hit
    start: int  # the supporting span in the document
    end: int
    score: float
    cosine: float
    coverage: float

    @property
    def supported(self) -> bool:
        return self.score >= SUPPORTED


class ClaimChecker:
    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.index = retriever.index

    @cached_property
    def _numbers(self) -> dict[str, int]:
        return {chunk.chunk_id: n for n, chunk in enumerate(self.index.chunks)}

    def _idf(self, token: str) -> float:
        texts = len(self.index.chunks)
        df = self.index.lexical.document_frequency(token)
        return math.log(1 + (texts - df + 0.5) / (df + 0.5))

    def coverage(self, claim_tokens: list[str], text: str) -> float:
        """Share of the claim's content words (idf-weighted) that `text` uses."""
        if not claim_tokens:
            return 0.0
        present = set(tokenize([text])[0])
        weights = {t: self._idf(t) for t in set(claim_tokens)}
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in present) / total if total else 0.0

    def support(self, claim: str, marker: int, hit: Hit, query: np.ndarray | None = None) -> Support:
        """The best span of `hit`'s passage for `claim` (a sentence, or two in a row)."""
        query = self.retriever.embedder.embed_query(claim) if query is None else query
        tokens = tokenize([claim])[0]
        number = self._numbers.get(hit.chunk.chunk_id)
        ids = self.index.chunk_sentences[number] if number is not None else []
        text = hit.document.text
        spans: list[tuple[int, int, float]] = []
        if ids:
            vectors = self.index.sentence_dense.reconstruct_batch(np.asarray(ids, dtype=np.int64))
            cosines = vectors @ query
            for i, sentence_id in enumerate(ids):
                sentence = self.index.sentences[sentence_id]
                spans.append((sentence.start, sentence.end, float(cosines[i])))
                if i + 1 < len(ids):  # a claim may say what two sentences say together
                    following = self.index.sentences[ids[i + 1]]
                    pair = float(
                        np.dot(vectors[i] + vectors[i + 1], query) / np.linalg.norm(vectors[i] + vectors[i + 1])
                    )
                    spans.append((sentence.start, following.end, pair))
        else:  # a passage without sentences of its own: the passage as a whole
            vector = self.retriever.embedder.embed_query(hit.chunk.text)
            spans.append((hit.chunk.start, hit.chunk.end, float(np.dot(vector, query))))
        best: Support | None = None
        for start, end, cosine in spans:
            covered = self.coverage(tokens, text[start:end])
            score = SUPPORT_WEIGHT * cosine + (1 - SUPPORT_WEIGHT) * covered
            # Ties go to the shorter, earlier span: one sentence rather than it and the next.
            if best is None or score > best.score + 1e-9:
                best = Support(marker, hit, start, end, round(score, 4), round(cosine, 4), round(covered, 4))
        assert best is not None
        return best
