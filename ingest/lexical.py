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

        model = bm25s.BM25.load(str(directory), mmap=False, allow_pickle=False, show_progress=False)
        return cls(model)

    def coverage(self, tokens: list[str]) -> float:
        """Share of the query's content words that occur anywhere in the indexed texts."""
        return sum(t in self._vocab for t in tokens) / len(tokens) if tokens else 0.0

    def scores(self, tokens: list[str]) -> np.ndarray:
        """BM25 score of every indexed text for the query's tokens (zeros when none is known)."""
        known = [t for t in tokens if t in self._vocab]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)
