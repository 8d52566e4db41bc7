"""The evaluation on the real index: hybrid keeps today's quality and beats every other system."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eval.questions import DEFAULT_QUESTIONS
from eval.run import EvalOptions, evaluate
from service.retriever import Retriever
from tests.conftest import CORPUS

pytestmark = pytest.mark.integration

# Measured by `citeqa eval --suite` (docs/eval/suite.md; hybrid: R@1 0.903, R@5 1.000, MRR@10
# 0.947, answer@1 0.871, speaker 1.000 over 55, off-topic flagged 16/16, answerable flagged 0/93);
# every floor two questions below, since the figures move with the CPU. Measured values still
# meet the floors set before this run (R@1 0.90, MRR 0.94, answer@1 0.85).
FLOORS = {
    "recall@1": 0.88,  # 0.903 - 2/93
    "recall@5": 0.97,
    "mrr@10": 0.92,
    "answer_hit@1": 0.84,
    "speaker_accuracy": 0.96,  # 1.000 - 2/55
    "no_answer_recall": 0.87,  # 1.000 - 2/16
}
CEILINGS = {"answerable_wrongly_flagged": 0.022}  # 0 + 2/93


@pytest.fixture(scope="module")
def report(
    real_retriever: Retriever, real_index: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("eval")
    options = EvalOptions(real_index, CORPUS, DEFAULT_QUESTIONS, out, model_dir, baseline=True)
    result, _ = evaluate(options, real_retriever)
    return result, out


def test_hybrid_meets_its_floors(report: tuple[dict[str, Any], Path]) -> None:
    hybrid = report[0]["systems"]["citeqa hybrid"]
    for metric, floor in FLOORS.items():
        assert hybrid[metric] >= floor, (metric, hybrid[metric])
    for metric, ceiling in CEILINGS.items():
        assert hybrid[metric] <= ceiling, (metric, hybrid[metric])


def test_hybrid_beats_dense_lexical_and_the_langchain_recipe(report: tuple[dict[str, Any], Path]) -> None:
    systems = report[0]["systems"]
    hybrid = systems["citeqa hybrid"]
    for other in ("citeqa dense", "citeqa lexical", "LangChain recipe"):
        assert hybrid["mrr@10"] > systems[other]["mrr@10"], other
        assert hybrid["recall@1"] > systems[other]["recall@1"], other


def test_report_files(report: tuple[dict[str, Any], Path]) -> None:
    out = report[1]
    table = (out / "report.md").read_text(encoding="utf-8")
    assert "| citeqa hybrid |" in table and "| LangChain recipe |" in table
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["systems"]
    assert (out / "recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
