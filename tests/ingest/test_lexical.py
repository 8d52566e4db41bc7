"""Bounded BM25 lookups against bm25s's full score array: the same numbers, the same order."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.lexical import LexicalIndex, tokenize

TEXTS = [
    "The tower stands in Moscow and the tower is tall.",
    "A gas plant in Syria; gas prices rose.",
    "Moscow gas, Moscow towers, Moscow again.",
    "Nothing relevant here at all.",
    "Tower tower tower.",
    "The the the.",  # all stopwords: indexed with an empty token
    "Syria and Moscow and a tower of gas.",
    "Tower tower tower.",  # a tie with an earlier text
]
QUERIES = ["Moscow tower", "gas gas Syria", "tower", "unknown words only", "", "the of", "Moscow Syria gas tower"]


@pytest.fixture(scope="module")
def lexical() -> LexicalIndex:
    return LexicalIndex.build(TEXTS)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("count", [1, 2, 3, 100])
def test_best_is_the_top_of_the_full_array(lexical: LexicalIndex, query: str, count: int) -> None:
    tokens = tokenize([query])[0]
    full = lexical.scores(tokens)
    expected = [n for n in sorted(range(len(full)), key=lambda n: (-full[n], n)) if full[n] > 0][:count]
    numbers, scores = lexical.best(tokens, count)
    assert numbers.tolist() == expected
    assert scores.tolist() == full[expected].tolist()  # bit for bit: same float32 sums


@pytest.mark.parametrize("query", QUERIES)
def test_scores_of_equals_the_full_array(lexical: LexicalIndex, query: str) -> None:
    tokens = tokenize([query])[0]
    full = lexical.scores(tokens)
    for numbers in ([7, 0, 3], list(range(len(TEXTS))), [], [5]):
        assert lexical.scores_of(tokens, numbers).tolist() == full[numbers].tolist()


def test_postings_are_sorted_as_binary_search_needs(lexical: LexicalIndex) -> None:
    matrix = lexical._model.scores
    for column in range(len(matrix["indptr"]) - 1):
        rows = matrix["indices"][matrix["indptr"][column] : matrix["indptr"][column + 1]]
        assert np.all(np.diff(rows) > 0)


def test_best_with_many_ties_and_repeated_words() -> None:
    """Equal-length texts of few words tie often; a repeated query word counts twice."""
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{w}" for w in rng.zipf(1.5, 6) % 12) for _ in range(300)]
    lexical = LexicalIndex.build(texts)
    for _ in range(50):
        tokens = tokenize([" ".join(f"w{w}" for w in rng.zipf(1.5, 3) % 14)])[0]
        full = lexical.scores(tokens)
        for count in (1, 5, 40, 500):
            expected = [n for n in sorted(range(len(full)), key=lambda n: (-full[n], n)) if full[n] > 0][:count]
            assert lexical.best(tokens, count)[0].tolist() == expected
