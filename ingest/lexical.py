"""BM25 over passages and sentences with bm25s, saved as JSON and .npy (never pickled)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
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


# Each word's postings again, ordered by falling BM25 contribution (ties: lower text number
# first), written beside bm25s's arrays for the passage index; `best` reads the top of them.
IMPACT_ROWS = "impact_rows.npy"
IMPACT_SCORES = "impact_scores.npy"
# Up to this many postings in a query's words, summing them all is the cheapest exact top-k.
EXHAUSTIVE_POSTINGS = 65_536
FIRST_DEPTH = 1024
# How deep into each word's impact-ordered postings `best` reads at most: the work per query
# is bounded by words × this, not by the corpus. Reached only when the bound has not proved
# the top-k exact by then (near-stop-words in every query word); what it returns is then
# the best of the texts seen, each with its exact score.
MAX_DEPTH = 65_536
# At most this many texts are scored exactly (binary searches in every query word's postings)
# at one depth: near-stop-words in every query word leave thousands of seen texts whose bounds
# cannot be told apart; beyond it the result is the best of those scored, taken in falling
# lower bound (what was seen of their score).
SCORING_BUDGET = 16_384
# A word in more than 1/DENSE_SHARE of the texts has its contributions looked up in a dense
# column (one float32 a text, zero where absent, built on first use) instead of binary-searched
# in its postings when many texts are scored at once: at 1M passages most of the bounded
# top-k's time was those searches. The longest postings first, within DENSE_BUDGET bytes an index.
DENSE_SHARE = 16
DENSE_BUDGET = 128 << 20
DENSE_LOOKUPS = 64  # fewer numbers than this are binary-searched (a passage's few sentences)


def impact_order(indptr: np.ndarray, rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The postings of a CSC matrix re-ordered within each column by falling score, then row."""
    columns = np.repeat(np.arange(len(indptr) - 1, dtype=np.int32), np.diff(indptr))
    order = np.lexsort((rows, -scores, columns))
    return np.ascontiguousarray(rows[order]), np.ascontiguousarray(scores[order])


def query_coverage(
    tokens: list[str], document_frequency: Callable[[str], int], texts: int, weighted: bool = True
) -> float:
    """How much of a query the corpus speaks of: the mean of two shares of the query's content
    words that occur in the indexed texts, one counting every word once, the other weighting
    each by its BM25 idf (a word the corpus never uses weighs most). An off-topic question
    shares the corpus's common words ("use", "set", "how") and lacks its distinctive ones, which
    the weighted share sees; the plain share keeps one unusual word of an answerable question
    ("redeploy") from sinking it. `weighted=False`: the plain share alone (indexes calibrated
    before the weighted share, whose threshold is on that scale)."""
    if not tokens:
        return 0.0
    frequencies = [document_frequency(t) for t in tokens]
    plain = sum(df > 0 for df in frequencies) / len(tokens)
    if not weighted:
        return plain
    idf = [math.log(1 + (texts - df + 0.5) / (df + 0.5)) for df in frequencies]
    share = sum(w for w, df in zip(idf, frequencies, strict=True) if df > 0) / sum(idf)
    return (plain + share) / 2


class LexicalIndex:
    def __init__(self, model: Any, impacts: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self._model = model
        self._vocab: dict[str, int] = model.vocab_dict
        self.size = int(model.scores["num_docs"])
        self._impacts = impacts
        # bm25s's CSC arrays as plain ndarray views of the memory map: slicing a numpy memmap
        # makes a memmap object each time, whose Python-level __array_finalize__ took 11% of the
        # server's samples at 16 clients (py-spy; docs/performance.md), two slices a query word.
        matrix = model.scores
        self._indptr = np.asarray(matrix["indptr"])
        self._indices = np.asarray(matrix["indices"])
        self._data = np.asarray(matrix["data"])
        lengths = np.diff(self._indptr)
        common = np.flatnonzero(lengths * DENSE_SHARE > self.size)
        common = common[np.argsort(-lengths[common], kind="stable")][: DENSE_BUDGET // (4 * max(self.size, 1))]
        self._dense_words = frozenset(int(c) for c in common)
        self._dense: dict[int, np.ndarray] = {}

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        import bm25s

        model = bm25s.BM25()
        # Every text gets at least one (empty-string) token, so an all-stopword passage still indexes.
        model.index([t or [""] for t in tokenize(texts)], show_progress=False)
        return cls(model)

    def with_impact_order(self) -> LexicalIndex:
        """This index with its impact-ordered postings computed (kept in memory, and saved)."""
        self.impacts()
        return self

    def impacts(self) -> tuple[np.ndarray, np.ndarray]:
        """(text numbers, contributions) of every posting, impact-ordered, on bm25s's indptr.
        Computed on first use when the index on disk has none (sentence indexes, older ones)."""
        if self._impacts is None:
            matrix = self._model.scores
            self._impacts = impact_order(
                np.asarray(matrix["indptr"]), np.asarray(matrix["indices"]), np.asarray(matrix["data"])
            )
        return self._impacts

    def save(self, directory: Path) -> None:
        self._model.save(str(directory), show_progress=False, allow_pickle=False)
        if self._impacts is not None:
            np.save(directory / IMPACT_ROWS, self._impacts[0], allow_pickle=False)
            np.save(directory / IMPACT_SCORES, self._impacts[1], allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        import bm25s

        model = bm25s.BM25.load(str(directory), mmap=True, allow_pickle=False, show_progress=False)
        impacts = None
        if (directory / IMPACT_ROWS).is_file():
            impacts = (  # plain views of the maps, as the CSC arrays (see __init__)
                np.asarray(np.load(directory / IMPACT_ROWS, mmap_mode="r", allow_pickle=False)),
                np.asarray(np.load(directory / IMPACT_SCORES, mmap_mode="r", allow_pickle=False)),
            )
        return cls(model, impacts)

    def document_frequency(self, token: str) -> int:
        """How many indexed texts hold the token (its column's postings)."""
        column = self._vocab.get(token)
        if column is None:
            return 0
        return int(self._indptr[column + 1] - self._indptr[column])

    def coverage(self, tokens: list[str], weighted: bool = True) -> float:
        """How much of the query the indexed texts speak of (`query_coverage`)."""
        return query_coverage(tokens, self.document_frequency, self.size, weighted)

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
        return [self._column(c) for c in (self._vocab.get(t) for t in tokens) if c is not None]

    def best(
        self, tokens: list[str], count: int, max_depth: int = MAX_DEPTH, exhaustive_postings: int = EXHAUSTIVE_POSTINGS
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `count` best-scoring texts with a score above zero, best first (ties: lower
        number first), and their scores, each equal to `scores`'s bit for bit. A query whose
        words have few postings sums them all (exact); otherwise the tops of the impact-ordered
        postings are read, at most `max_depth` deep (see `best_by_impact`)."""
        postings = self._postings(tokens)
        if not postings or count < 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if sum(len(rows) for rows, _ in postings) <= exhaustive_postings:
            return self._best_of_all(postings, count)
        return self.best_by_impact(tokens, count, max_depth)[:2]

    def best_by_impact(
        self,
        tokens: list[str],
        count: int,
        max_depth: int,
        first_depth: int = FIRST_DEPTH,
        scoring_budget: int = SCORING_BUDGET,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """The threshold algorithm on impact-ordered postings. Read the top `depth` of each query
        word's postings; a text in none of them scores at most U, the float32 sum, in token
        order, of each word's contribution at `depth` (rounding is monotone). A text seen in
        some lists scores at least what was seen (lower) and at most that plus the bounds of
        the lists it was not seen in (upper); only texts whose upper reaches the count-th best
        lower are scored exactly. Once the count-th exact score reaches U, the returned scores
        are the exact top-k's (a text of an equal score may stand in for one tied at the cut);
        else depth grows fourfold, up to `max_depth`. Also says whether U was reached (False:
        the best of what `max_depth`, or the scoring budget, allowed to see)."""
        indptr = self._indptr
        rows_by_impact, scores_by_impact = self.impacts()
        spans = [(int(indptr[c]), int(indptr[c + 1])) for c in (self._vocab.get(t) for t in tokens) if c is not None]
        if not spans or count < 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32), True
        depth = max(first_depth, count)
        while True:
            depth = min(depth, max_depth)
            tops = [(start, min(end, start + depth), end) for start, end in spans]
            # Each word's contribution at the depth: no text beyond it gets more from that word.
            bounds = np.array([scores_by_impact[top] if top < end else 0 for _, top, end in tops], dtype=np.float32)
            bound = np.float32(0)
            for value in bounds:
                bound = np.float32(bound + value)
            seen, inverse = np.unique(np.concatenate([rows_by_impact[s:t] for s, t, _ in tops]), return_inverse=True)
            read = np.concatenate([scores_by_impact[s:t] for s, t, _ in tops]).astype(np.float64)
            lower = np.bincount(inverse, read, len(seen))
            covered = np.bincount(inverse, np.repeat(bounds.astype(np.float64), [t - s for s, t, _ in tops]), len(seen))
            upper = lower + (float(bounds.astype(np.float64).sum()) - covered)
            rows, scores, complete = self._best_seen(tokens, count, seen, lower, upper, max(scoring_budget, 2 * count))
            proven = complete and (bound <= 0 or (len(scores) == count and scores[-1] >= bound))
            if proven or not complete or depth >= max_depth:
                return rows, scores, bool(proven)
            depth *= 4

    def _best_seen(
        self, tokens: list[str], count: int, seen: np.ndarray, lower: np.ndarray, upper: np.ndarray, budget: int
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """The best of the seen texts, scoring exactly as few as the bounds allow: those whose
        upper bound reaches the count-th best lower bound, in falling lower bound (then number:
        the likeliest first), in doubling batches, until no text left has an upper bound above
        the count-th exact score (one it might tie with may be left out; none that would beat
        it is), or `budget` have been scored. Also says whether the bounds ended it."""
        # A float32 sum of m terms is within (m - 1)·2⁻²⁴ of the exact sum, relatively; these
        # float64 bounds are widened by more than that, so they bound the float32 scores.
        slack = len(tokens) * 2.0**-23
        lower, upper = lower * (1 - slack), upper * (1 + slack)
        cut = np.partition(lower, len(lower) - count)[len(lower) - count] if len(lower) > count else 0.0
        hopeful = np.flatnonzero(upper >= cut)
        hopeful = hopeful[np.argsort(-lower[hopeful], kind="stable")]
        still_possible = np.maximum.accumulate(upper[hopeful][::-1])[::-1]  # best upper from here on
        rows, scores = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        done, batch = 0, 2 * count
        while done < len(hopeful):
            if done >= budget:
                return rows, scores, False
            numbers = seen[hopeful[done : done + batch]].astype(np.int64)
            rows, scores = np.concatenate([rows, numbers]), np.concatenate([scores, self.scores_of(tokens, numbers)])
            order = np.argsort(rows)
            rows, scores = _top(rows[order], scores[order], count)
            done, batch = done + batch, batch * 2
            if len(scores) == count and done < len(hopeful) and still_possible[done] <= scores[-1]:
                break
        return rows, scores, True

    def _best_of_all(self, postings: list[tuple[np.ndarray, np.ndarray]], count: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact, with work growing with the postings of the query's words (P), not with the
        corpus: no sort over all P, no pass over every text. Sums are float32 in token order."""
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
        return _top(rows.astype(np.int64), sums[rows], count)

    def scores_of(self, tokens: list[str], numbers: np.ndarray | list[int]) -> np.ndarray:
        """BM25 of the given texts alone, equal to `scores(tokens)[numbers]` bit for bit: each
        query token's contributions, in token order, from binary searches in its postings, or,
        for a very common word when many texts are scored, from its dense column. The numbers
        are searched for in the postings' own integer type: numpy would otherwise cast every
        posting of the word (millions, for a common word in a million-text index) to the
        numbers' type on each call."""
        numbers = np.asarray(numbers, dtype=np.int64)
        wanted = _in_type_of(numbers, self._indices.dtype)
        lookups = len(numbers) >= DENSE_LOOKUPS and numbers.min() >= 0 and numbers.max() < self.size
        sums = np.zeros(len(wanted), dtype=np.float32)
        for token in tokens:
            column = self._vocab.get(token)
            if column is None:
                continue
            if lookups and column in self._dense_words:
                sums += self._dense_column(column)[numbers]  # + 0.0 where absent: the same sums
                continue
            rows, contributions = self._column(column)
            if not len(rows):
                continue
            at = np.minimum(np.searchsorted(rows, wanted), len(rows) - 1)
            found = rows[at] == wanted
            sums[found] += contributions[at[found]].astype(np.float32)
        return sums

    def _column(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = int(self._indptr[column]), int(self._indptr[column + 1])
        return self._indices[start:end], self._data[start:end]

    def _dense_column(self, column: int) -> np.ndarray:
        """A common word's contribution to every text (built once; concurrent first uses may
        both build it, and either result is the same)."""
        dense = self._dense.get(column)
        if dense is None:
            rows, contributions = self._column(column)
            dense = np.zeros(self.size, dtype=np.float32)
            dense[rows] = contributions
            self._dense[column] = dense
        return dense


def _in_type_of(numbers: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`numbers` in integer type `dtype` when that holds them all exactly (text numbers always
    fit bm25s's int32 rows), else unchanged: then no posting can equal a number it cannot hold."""
    if numbers.dtype == dtype or not np.issubdtype(dtype, np.integer):
        return numbers
    limits = np.iinfo(dtype)
    if len(numbers) and (numbers.min() < limits.min or numbers.max() > limits.max):
        return numbers
    return numbers.astype(dtype)


def _top(rows: np.ndarray, scores: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The `count` best of distinct, ascending `rows` scoring above zero, best first, ties by
    lower number."""
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
    return rows[order], scores[order]
