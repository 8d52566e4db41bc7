"""BM25 over passages and sentences with bm25s, saved as JSON and .npy (never pickled)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

STOPWORDS = "en"


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, Snowball-stemmed word tokens; the same for corpus and query."""
    import bm25s

    tokens = bm25s.tokenize(texts, stopwords=STOPWORDS, stemmer=_stemmer(), return_ids=False, show_progress=False)
    return [list(t) for t in tokens]


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

    def coverage(self, query: str) -> float:
        """Share of the query's content words that occur anywhere in the indexed texts."""
        tokens = tokenize([query])[0]
        return sum(t in self._vocab for t in tokens) / len(tokens) if tokens else 0.0

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every indexed text for `query` (zeros when no query word is known)."""
        known = [t for t in tokenize([query])[0] if t in self._vocab]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)
