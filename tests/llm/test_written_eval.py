"""`citeqa eval --written`: the harness scores what the reader wrote, on replies scripted to be
right, wrong and declined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.written import run_written
from service.llm.client import LLMConfig
from service.retriever import Retriever
from tests.conftest import run_citeqa
from tests.llm.conftest import Scripted

ANSWERABLE: dict[str, Any] = {
    "id": "q002",
    "question": "Which group claimed responsibility for the Crocus City Hall attack?",
    "type": "factual",
    "evidence": ["has been claimed by ISIS-K — an Afghan faction of the Islamic State (ISIS)"],
}
OFF_TOPIC: dict[str, Any] = {
    "id": "x1",
    "question": "How do I bake sourdough bread?",
    "type": "off_topic",
    "evidence": [],
}


def questions(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in (ANSWERABLE, OFF_TOPIC)), encoding="utf-8")
    return path


def test_a_right_reply_scores_and_an_off_topic_one_is_declined(
    real_retriever: Retriever, scripted_llm: Scripted, tmp_path: Path
) -> None:
    hit = real_retriever.answer(ANSWERABLE["question"], 5).hits[0]
    assert ANSWERABLE["evidence"][0] in hit.chunk.text  # the premise: the top passage holds it
    scripted_llm.script("The Crocus City Hall attack has been claimed by ISIS-K, an Afghan faction of ISIS. [1]")
    report = run_written(real_retriever, questions(tmp_path), tmp_path / "out", LLMConfig(scripted_llm.url))
    summary = report["summary"]
    assert summary["markers_holding_evidence"] == 1.0
    assert summary["answers_covering_evidence"] == 1.0
    # The same sentence for the off-topic question: no passage about bread supports it.
    assert summary["unanswerable_declined"] == 1.0
    assert (tmp_path / "out" / "written.md").exists()


def test_a_wrong_marker_scores_zero(real_retriever: Retriever, scripted_llm: Scripted, tmp_path: Path) -> None:
    scripted_llm.script("The Crocus City Hall attack has been claimed by ISIS-K, an Afghan faction of ISIS. [4]")
    summary = run_written(real_retriever, questions(tmp_path), tmp_path / "out", LLMConfig(scripted_llm.url))["summary"]
    assert summary["markers_holding_evidence"] == 0.0
    assert summary["answers_covering_evidence"] == 0.0


def test_written_eval_without_an_llm_is_a_one_line_error(real_index: Path, tmp_path: Path) -> None:
    done = run_citeqa("eval", "--written", "--index", str(real_index), "--questions", str(questions(tmp_path)))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "citeqa: error: --written needs an LLM: --llm-url URL or CITEQA_LLM_URL (e.g. http://127.0.0.1:8080/v1)"
    ]
