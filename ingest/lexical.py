"""BM25 over passages and sentences with bm25s, saved as JSON and .npy (never pickled)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


# Words of two or more letters or digits; "_" separates words, so `edit_uri` and an escaped
# `edit\_uri` (as Markdown renderers write it) give the same tokens.
TOKEN = re.compile(r"[^\W_]{2,}")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, Snowball-stemmed word tokens; the same for corpus and query.
    (bm25s.tokenize's rules, without its per-call progress-bar set-up on the query path.)"""
    stopwords, stemmer = _stopwords(), _stemmer()
    return [stemmer.stemWords([w for w in TOKEN.findall(text.lower()) if w not in stopwords]) for text in texts]


class LexicalIndex:
    def __init__(self, model: Any) -> None:
        self._model = model
        self._vocab: dict[str, int] = model.vocab_dict
        self.size = int(model.scores["num_docs"])

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        import bm25s

        model = bm25s.BM25()
        # Every text gets at least one (empty-string) token, so an all-stopword passage still indexes.
        model.index([t or [""] for t in tokenize(texts)], show_progress=False)
        return cls(model)

    def save(self, directory: Path) -> None:
        self._model.save(str(directory), show_progress=False, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        import bm25s

        model = bm25s.BM25.load(str(directory), mmap=True, allow_pickle=False, show_progress=False)
        return cls(model)

    def coverage(self, tokens: list[str]) -> float:
        """Share of the query's content words that occur anywhere in the indexed texts."""
        return sum(t in self._vocab for t in tokens) / len(tokens) if tokens else 0.0

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every indexed text for the query's tokens (zeros when none is known).
        O(corpus) per call: the query path uses `best` and `scores_of` instead."""
        known = [t for t in tokens if t in self._vocab]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)

    def _postings(self, tokens: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(text numbers, BM25 contributions) of each known query token, repeats kept as bm25s
        keeps them. The index is bm25s's CSC matrix: one column per token, rows sorted."""
        matrix = self._model.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        out = []
        for token in tokens:
            column = self._vocab.get(token)
            if column is not None:
                start, end = int(indptr[column]), int(indptr[column + 1])
                out.append((np.asarray(indices[start:end]), np.asarray(data[start:end])))
        return out

    def best(self, tokens: list[str], count: int) -> tuple[np.ndarray, np.ndarray]:
        """The `count` best-scoring texts with a score above zero, best first (ties: lower
        number first), and their scores. Work grows with the postings of the query's words
        (P), not with the corpus: no sort over all P, no pass over every text. Sums are float32
        in token order, so every score equals `scores`'s bit for bit."""
        postings = self._postings(tokens)
        if not postings or count < 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        sums = np.zeros(self.size, dtype=np.float32)  # calloc: only the pages written are touched
        for rows, contributions in postings:
            sums[rows] += contributions  # rows are distinct within a token's postings
        rows = np.concatenate([rows for rows, _ in postings])
        values = sums[rows]
        # A text appears at most once per token, so the count·tokens best positions hold the
        # count best texts, and every text tied with the last of them (proof: a text scoring
        # below the threshold would leave fewer than count·tokens positions above it).
        positions = count * len(postings)
        if len(values) > positions:
            threshold = np.partition(values, len(values) - positions)[len(values) - positions]
            rows = rows[values >= threshold]
        rows = np.unique(rows)
        scores = sums[rows]
        positive = scores > 0
        rows, scores = rows[positive], scores[positive]
        if len(scores) > count:
            # Everything scoring above the count-th best, plus enough of its ties (lowest numbers).
            threshold = np.partition(scores, len(scores) - count)[len(scores) - count]
            above = scores > threshold
            ties = np.flatnonzero(scores == threshold)[: count - int(above.sum())]
            chosen = np.sort(np.concatenate([np.flatnonzero(above), ties]))
            rows, scores = rows[chosen], scores[chosen]
        order = np.lexsort((rows, -scores))
        return rows[order].astype(np.int64), scores[order]

    def scores_of(self, tokens: list[str], numbers: np.ndarray | list[int]) -> np.ndarray:
        """BM25 of the given texts alone (binary search in each query token's postings), equal
        to `scores(tokens)[numbers]`."""
        wanted = np.asarray(numbers, dtype=np.int64)
        sums = np.zeros(len(wanted), dtype=np.float32)
        for rows, contributions in self._postings(tokens):
            if not len(rows):
                continue
            at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
            found = rows[at] == wanted
            sums[found] += contributions[at[found]].astype(np.float32)
        return sums
