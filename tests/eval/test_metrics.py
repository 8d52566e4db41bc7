"""Metric plumbing checked against hand computation, and the tuning helpers."""

from __future__ import annotations

import pytest

from eval.metrics import Outcome, ranking_metrics
from eval.questions import Question, Span
from eval.systems import Result
from eval.tune import calibrate_threshold, weight_grid


def outcome(qid: str, rank: int | None, returned: int = 10) -> Outcome:
    spans = [Span("d", i, i + 1) for i in range(returned)]
    result = Result(spans, [None] * returned, [None] * returned, None)
    return Outcome(Question(qid, "q", "factual", ("x",)), rank, None, None, None, 1.0, result)


def test_ranking_metrics_match_hand_computation() -> None:
    outcomes = [outcome("a", 1), outcome("b", 3), outcome("c", None), outcome("d", 10)]
    metrics = ranking_metrics(outcomes)
    assert metrics["recall@1"] == pytest.approx(1 / 4)
    assert metrics["recall@3"] == pytest.approx(2 / 4)
    assert metrics["recall@10"] == pytest.approx(3 / 4)
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 10) / 4)


def test_weight_grid_is_the_simplex() -> None:
    grid = weight_grid(0.5)
    assert sorted(grid) == sorted(
        [(0.0, 0.0, 1.0), (0.0, 0.5, 0.5), (0.0, 1.0, 0.0), (0.5, 0.0, 0.5), (0.5, 0.5, 0.0), (1.0, 0.0, 0.0)]
    )
    assert all(sum(w) == pytest.approx(1.0) for w in weight_grid())


def test_threshold_sits_in_the_middle_of_the_gap() -> None:
    confidences = [(0.9, True), (0.6, True), (0.5, True), (0.2, False), (0.1, False)]
    assert calibrate_threshold(confidences) == pytest.approx(0.35)


def test_threshold_with_overlap_favours_the_best_balance() -> None:
    confidences = [(0.9, True), (0.4, True), (0.45, False), (0.1, False), (0.2, False)]
    threshold = calibrate_threshold(confidences)
    assert 0.2 < threshold < 0.4 or threshold > 0.45
