"""How a batch of concurrent queries is cut into runs of similar length before encoding."""

from __future__ import annotations

from itertools import combinations, pairwise

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ingest.onnx_model import length_groups


def cost(lengths: np.ndarray, groups: list[np.ndarray], run_cost: float) -> float:
    return sum(run_cost + len(g) * int(lengths[g].max()) for g in groups)


def cheapest_by_brute_force(lengths: np.ndarray, run_cost: float) -> float:
    """Every cut of the length order into contiguous runs, tried."""
    ordered = np.sort(lengths)
    best = float("inf")
    for cuts in range(len(ordered)):
        for points in combinations(range(1, len(ordered)), cuts):
            bounds = [0, *points, len(ordered)]
            runs = [ordered[a:b] for a, b in pairwise(bounds)]
            best = min(best, sum(run_cost + len(r) * int(r.max()) for r in runs))
    return best


@given(st.lists(st.integers(1, 256), min_size=1, max_size=9), st.sampled_from([0, 1, 16, 64, 10_000]))
def test_groups_cover_every_query_once_at_the_least_cost(lengths: list[int], run_cost: int) -> None:
    array = np.asarray(lengths, dtype=np.int64)
    groups = length_groups(array, run_cost)
    assert sorted(int(i) for g in groups for i in g) == list(range(len(lengths)))
    longest = [int(array[g].max()) for g in groups]
    assert longest == sorted(longest)  # shortest first
    assert cost(array, groups, run_cost) == cheapest_by_brute_force(array, run_cost)


def test_similar_lengths_share_a_run_and_an_outlier_gets_its_own() -> None:
    lengths = np.asarray([18, 20, 200, 19, 17], dtype=np.int64)
    assert [sorted(int(i) for i in g) for g in length_groups(lengths, 16)] == [[0, 1, 3, 4], [2]]
    assert len(length_groups(lengths, 10_000)) == 1  # runs dearer than any padding: one run
    assert length_groups(np.asarray([], dtype=np.int64), 16) == []
