"""The written answer's support settings: chosen by eval/claims.py, and the ones the service uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.claims import choose, decide_claims, rates
from service.llm import check

REPO = Path(__file__).resolve().parents[2]


def rows(corpus: str, foreign: list[float], cited: list[tuple[float, float]]) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = [{"corpus": corpus, "kind": "foreign", "best": b} for b in foreign]
    made += [{"corpus": corpus, "kind": "evidence", "right": r, "wrong": w} for r, w in cited]
    return made


def test_threshold_keeps_few_foreign_claims_and_margin_few_wrong_citations() -> None:
    data = rows("a", [0.2, 0.3, 0.4, 0.5], [(0.9, 0.85), (0.8, 0.5), (0.7, 0.6)])
    threshold, margin = choose(data)
    assert threshold == 0.505  # the lowest above every foreign claim (none of 4 may be kept)
    assert margin == 0.02  # 0.05 would keep the 0.85 next to 0.9: one wrong citation in three
    assert rates(data, threshold, margin)["right_kept_evidence"] == 1.0


def test_each_fold_is_chosen_without_its_corpus() -> None:
    data = rows("a", [0.2], [(0.9, 0.3)]) + rows("b", [0.8], [(0.9, 0.3)]) + rows("c", [0.6], [(0.9, 0.3)])
    result = decide_claims(data, ["a", "b"], ["c"])
    assert result["folds"]["a"]["threshold"] == 0.805 and result["folds"]["a"]["foreign_kept"] == 0.0
    assert result["folds"]["b"]["threshold"] == 0.3 and result["folds"]["b"]["foreign_kept"] == 1.0


def test_the_service_uses_the_settings_chosen() -> None:
    chosen = json.loads((REPO / "docs/eval/claims.json").read_text(encoding="utf-8"))
    assert (chosen["threshold"], chosen["margin"]) == (check.SUPPORTED, check.MARGIN)
    assert f"threshold **{check.SUPPORTED}**, margin **{check.MARGIN}**" in (REPO / "docs/eval/claims.md").read_text()
