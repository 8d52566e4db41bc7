"""Each sentence of a written answer checked against the passages it cites.

A cited passage supports a sentence when one of its sentences (or two in a row) says the same:
the sentence's meaning (its cosine with the claim, from the index's own sentence vectors and the
query encoder) and its words (the share of the claim's content words, weighted by their idf in
the corpus, found in those sentences). The supporting span is that sentence, with its offsets in
the document, so that it slices the document exactly like every other citation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ingest.lexical import tokenize
from service.retriever import Hit, Retriever

# A cited passage supports its sentence when its score (SUPPORT_WEIGHT·cosine + (1 −
# SUPPORT_WEIGHT)·coverage) reaches SUPPORTED, and comes within MARGIN of the best score any
# passage the LLM was given has for that sentence: a sentence that another given passage says
# far better is not what the cited one says. Both chosen leave-one-corpus-out on the suite's
# tuning corpora (`citeqa eval --claims`, docs/eval/claims.md): SUPPORTED on claims that no given
# passage holds, MARGIN on claims cited to a given passage that does not hold them.
SUPPORT_WEIGHT = 0.6
SUPPORTED = 0.54
MARGIN = 0.1


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
    supported: bool = False


class ClaimChecker:
    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.index = retriever.index

    def _idf(self, token: str) -> float:
        texts = len(self.index.chunks)
        df = self.index.lexical.document_frequency(token)
        return math.log(1 + (texts - df + 0.5) / (df + 0.5))

    def weights(self, claim_tokens: list[str]) -> dict[str, float]:
        """The idf of each of the claim's content words, once for all the spans it is checked on."""
        return {t: self._idf(t) for t in set(claim_tokens)}

    @staticmethod
    def coverage(weights: dict[str, float], text: str) -> float:
        """Share of the claim's content words (idf-weighted) that `text` uses."""
        total = sum(weights.values())
        if not total:
            return 0.0
        present = set(tokenize([text])[0])
        return sum(w for t, w in weights.items() if t in present) / total

    def support(self, claim: str, marker: int, hit: Hit, query: np.ndarray | None = None) -> Support:
        """The best span of `hit`'s passage for `claim` (a sentence, or two in a row)."""
        query = self.retriever.embedder.embed_query(claim) if query is None else query
        weights = self.weights(tokenize([claim])[0])
        ids = self.index.chunk_sentences[hit.number] if hit.number is not None else []
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
            covered = self.coverage(weights, text[start:end])
            score = SUPPORT_WEIGHT * cosine + (1 - SUPPORT_WEIGHT) * covered
            # Ties go to the shorter, earlier span: one sentence rather than it and the next.
            if best is None or score > best.score + 1e-9:
                best = Support(marker, hit, start, end, round(score, 4), round(cosine, 4), round(covered, 4))
        assert best is not None
        return best

    def supports(self, claim: str, cited: list[tuple[int, Hit]], given: list[Hit]) -> list[Support]:
        """Each cited passage's support for `claim`, judged against every passage given."""
        query = self.retriever.embedder.embed_query(claim)
        scored = {hit.rank: self.support(claim, 0, hit, query) for hit in given}
        best = max((s.score for s in scored.values()), default=0.0)
        result = []
        for marker, hit in cited:
            found = scored.get(hit.rank) or self.support(claim, marker, hit, query)
            supported = found.score >= SUPPORTED and found.score >= best - MARGIN
            result.append(replace(found, marker=marker, supported=supported))
        return result
