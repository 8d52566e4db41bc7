"""Bounded BM25 lookups against bm25s's full score array: the same numbers, the same order."""

from __future__ import annotations

from pathlib import Path

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


def test_scores_of_takes_any_integer_type_and_numbers_no_text_has(lexical: LexicalIndex) -> None:
    """Numbers are searched for in the postings' type; one that type cannot hold (2³² + 2 would
    wrap to text 2 in int32) matches no text rather than another's score."""
    tokens = tokenize(["Moscow gas tower"])[0]
    full = lexical.scores(tokens)
    assert full[2] > 0
    for dtype in (np.int64, np.int32, np.uint16, np.int8):
        assert lexical.scores_of(tokens, np.array([2, 0, 6], dtype=dtype)).tolist() == full[[2, 0, 6]].tolist()
    wide = np.array([2**32 + 2, 2, -(2**32) + 2], dtype=np.int64)
    assert lexical.scores_of(tokens, wide).tolist() == [0.0, full[2], 0.0]


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


def _exhaustive_top(full: np.ndarray, count: int) -> list[int]:
    return [n for n in sorted(range(len(full)), key=lambda n: (-full[n], n)) if full[n] > 0][:count]


def _zipf_index(seed: int, texts: int) -> tuple[LexicalIndex, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return LexicalIndex.build([" ".join(f"w{w}" for w in rng.zipf(1.5, 6) % 12) for _ in range(texts)]), rng


def test_impact_order_sorts_each_words_postings_by_falling_contribution(lexical: LexicalIndex) -> None:
    matrix = lexical._model.scores
    rows, scores = lexical.impacts()
    for column in range(len(matrix["indptr"]) - 1):
        span = slice(matrix["indptr"][column], matrix["indptr"][column + 1])
        assert sorted(zip(rows[span].tolist(), scores[span].tolist(), strict=True)) == list(
            zip(matrix["indices"][span].tolist(), matrix["data"][span].tolist(), strict=True)
        )
        keys = list(zip((-scores[span]).tolist(), rows[span].tolist(), strict=True))
        assert keys == sorted(keys)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("count", [1, 2, 3, 100])
def test_impact_path_from_depth_one_equals_the_full_array(lexical: LexicalIndex, query: str, count: int) -> None:
    """Forced through the impact path, deepening from one posting: still the exact top-k."""
    tokens = tokenize([query])[0]
    full = lexical.scores(tokens)
    expected = _exhaustive_top(full, count)
    numbers, scores, proven = lexical.best_by_impact(tokens, count, max_depth=1 << 20, first_depth=1)
    assert proven
    assert numbers.tolist() == expected and scores.tolist() == full[expected].tolist()
    assert lexical.best(tokens, count, exhaustive_postings=0)[0].tolist() == expected


def test_impact_path_with_many_ties_has_the_exact_top_scores() -> None:
    """Equal-length texts tie often. Proven results hold the exhaustive top-k's scores, every
    text above the cut itself, and at the cut only texts of exactly that score."""
    lexical, rng = _zipf_index(0, 400)
    unproven = 0
    for _ in range(60):
        tokens = tokenize([" ".join(f"w{w}" for w in rng.zipf(1.5, 3) % 14)])[0]
        full = lexical.scores(tokens)
        for count in (1, 5, 40, 500):
            expected = _exhaustive_top(full, count)
            for first_depth in (1, 3, 50):
                numbers, scores, proven = lexical.best_by_impact(tokens, count, 1 << 20, first_depth, 1 << 20)
                assert proven and scores.tolist() == full[expected].tolist() == full[numbers].tolist()
                assert scores.tolist() == full[numbers].tolist()  # each score exact, bit for bit
                cut = scores[-1] if len(scores) else 0
                assert [n for n in numbers if full[n] > cut] == [n for n in expected if full[n] > cut]
                assert len(set(numbers.tolist())) == len(numbers)
            # Capped shallow: the best of what was seen, with exact scores, never above the truth.
            numbers, scores, proven = lexical.best_by_impact(tokens, count, max_depth=2, first_depth=1)
            unproven += not proven
            assert scores.tolist() == full[numbers].tolist()
            assert all(s <= t for s, t in zip(scores, full[expected], strict=False))
    assert unproven > 0  # the cap was reached at least once, so that branch was exercised


def test_impacts_are_saved_and_memory_mapped(tmp_path: Path) -> None:
    lexical, _ = _zipf_index(1, 200)
    lexical.with_impact_order().save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    for saved, read in zip(lexical.impacts(), loaded.impacts(), strict=True):
        # read from the map, as a plain ndarray view: slicing a memmap object costs Python time
        assert not isinstance(read, np.memmap) and isinstance(read.base, np.memmap)
        assert read.tolist() == saved.tolist()
    tokens = tokenize(["w1 w2 w3"])[0]
    assert loaded.best(tokens, 10, exhaustive_postings=0)[0].tolist() == _exhaustive_top(loaded.scores(tokens), 10)


def test_an_index_saved_without_impacts_computes_them_when_needed(tmp_path: Path) -> None:
    lexical, _ = _zipf_index(2, 200)
    lexical.save(tmp_path)
    assert not list(tmp_path.glob("impact*"))
    loaded = LexicalIndex.load(tmp_path)
    tokens = tokenize(["w1 w5"])[0]
    assert loaded.best(tokens, 7, exhaustive_postings=0)[0].tolist() == _exhaustive_top(loaded.scores(tokens), 7)


def test_impact_path_tells_apart_scores_that_differ_by_a_near_stop_word() -> None:
    """A word in all texts but one has an idf near zero: its share separates otherwise equal
    scores by a few parts in a million, which the bounds must not round away."""
    rng = np.random.default_rng(3)
    texts = [" ".join(["common"] * int(rng.integers(1, 4)) + [f"w{rng.integers(0, 6)}"]) for _ in range(600)]
    lexical = LexicalIndex.build([*texts, "lonely"])
    unproven = 0
    for query in ("common w1", "w2 common w3", "common"):
        tokens = tokenize([query])[0]
        full = lexical.scores(tokens)
        for count in (5, 50, 150):
            expected = _exhaustive_top(full, count)
            numbers, scores, proven = lexical.best_by_impact(tokens, count, 1 << 20, 1, 1 << 20)
            assert proven and scores.tolist() == full[expected].tolist() == full[numbers].tolist()
            # Scoring fewer than the ties need: not proven (below), and still exact scores.
            numbers, scores, proven = lexical.best_by_impact(tokens, count, 1 << 20, 1, scoring_budget=1)
            unproven += not proven
            assert scores.tolist() == full[numbers].tolist()
    assert unproven > 0


def test_common_words_scored_from_dense_columns_equal_the_full_array() -> None:
    """Words in more than a sixteenth of the texts are looked up in dense columns when many
    texts are scored at once: the same float32 sums bit for bit, in any order, with repeats,
    and numbers beyond the corpus still match nothing (binary search, no index error)."""
    rng = np.random.default_rng(7)
    words = [f"word{n}" for n in range(300)]
    texts = [" ".join(rng.choice(words, 30, p=_zipf(len(words)))) for _ in range(500)]
    lexical = LexicalIndex.build(texts)
    tokens = tokenize(["word0 word1 word2 word250 word0 nothere"])[0]
    full = lexical.scores(tokens)
    numbers = rng.integers(0, len(texts), 300)
    assert lexical.scores_of(tokens, numbers).tolist() == full[numbers].tolist()
    assert lexical._dense, "no dense column was used"  # word0..word2 are in most texts
    assert lexical.scores_of(tokens, numbers[:10]).tolist() == full[numbers[:10]].tolist()
    beyond = np.concatenate([numbers, [len(texts), 2**40]])
    assert lexical.scores_of(tokens, beyond).tolist() == [*full[numbers].tolist(), 0.0, 0.0]


def _zipf(count: int) -> np.ndarray:
    weights: np.ndarray = 1.0 / np.arange(1, count + 1) ** 1.1
    return weights / float(weights.sum())


def test_coverage_weighs_the_words_the_corpus_lacks_by_their_rarity(lexical: LexicalIndex) -> None:
    """The plain share counts every query word once; the weighted one gives a word the corpus
    lacks the largest idf, so a question that shares only a common word scores lower than one
    that shares a distinctive word, though both share one word of two."""
    common = tokenize(["tower sourdough"])[0]  # "tower" is in 5 of 8 texts
    distinctive = tokenize(["relevant sourdough"])[0]  # "relev" is in 1 of 8
    assert lexical.coverage(common, weighted=False) == lexical.coverage(distinctive, weighted=False) == 0.5
    assert lexical.coverage(common) < lexical.coverage(distinctive) < 0.5
    assert lexical.coverage(tokenize(["Moscow tower"])[0]) == 1.0
    assert lexical.coverage(tokenize(["sourdough bread"])[0]) == 0.0
    assert lexical.coverage([]) == 0.0


def test_calibration_and_service_measure_coverage_alike(lexical: LexicalIndex) -> None:
    """Ingest calibrates its threshold with document frequencies counted from the texts; the
    service reads them from the BM25 index: the same numbers, or the threshold means nothing."""
    from collections import Counter

    from ingest.lexical import query_coverage

    frequency = Counter(t for tokens in tokenize(TEXTS) for t in set(tokens))
    for query in [*QUERIES, "tower sourdough", "relevant gas Syria bread"]:
        tokens = tokenize([query])[0]
        assert query_coverage(tokens, lambda t: frequency[t], len(TEXTS)) == lexical.coverage(tokens)
        for token in tokens:
            assert lexical.document_frequency(token) == frequency[token]


def test_postings_are_plain_views_of_the_memory_map(tmp_path: Path) -> None:
    lexical, _ = _zipf_index(3, 200)
    lexical.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    rows, contributions = loaded._column(0)
    for array in (rows, contributions):
        assert type(array) is np.ndarray  # not a np.memmap: no per-slice __array_finalize__
        base = array.base
        while base is not None and not isinstance(base, np.memmap):
            base = base.base
        assert isinstance(base, np.memmap), "the postings are read from the map, not copied"
