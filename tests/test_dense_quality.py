"""Dense retrieval with the real model on the real article: the answer is in the top 5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.documents import Document
from service.retriever import Hit, Retriever

QUESTIONS = Path(__file__).parent / "data" / "dense_questions.jsonl"

pytestmark = pytest.mark.integration


def load_questions() -> list[dict[str, Any]]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def evidence_spans(document: Document, quote: str) -> list[tuple[int, int]]:
    spans, position = [], document.text.find(quote)
    while position >= 0:
        spans.append((position, position + len(quote)))
        position = document.text.find(quote, position + 1)
    return spans


def is_relevant(hit: Hit, spans: list[tuple[int, int]]) -> bool:
    """The passage covers at least half of an evidence quote's span."""
    for start, end in spans:
        covered = min(end, hit.chunk.end) - max(start, hit.chunk.start)
        if covered * 2 >= end - start:
            return True
    return False


def test_question_set_quotes_exist(article: Document) -> None:
    questions = load_questions()
    assert len(questions) >= 20
    for item in questions:
        for quote in item["evidence"]:
            assert evidence_spans(article, quote), quote


def test_dense_answers_at_rank_5_or_better(real_retriever: Retriever, article: Document) -> None:
    questions = load_questions()
    found, misses = 0, []
    for item in questions:
        spans = [s for quote in item["evidence"] for s in evidence_spans(article, quote)]
        hits = real_retriever.search(item["question"], k=5, mode="dense")
        if any(is_relevant(hit, spans) for hit in hits):
            found += 1
        else:
            misses.append(item["question"])
    assert found / len(questions) >= 0.85, misses


def test_speaker_of_the_answering_passage(real_retriever: Retriever, article: Document) -> None:
    checked = 0
    for item in load_questions():
        if "speaker" not in item:
            continue
        spans = [s for quote in item["evidence"] for s in evidence_spans(article, quote)]
        for hit in real_retriever.search(item["question"], k=10):
            if is_relevant(hit, spans):
                assert hit.chunk.speaker == item["speaker"], item["question"]
                checked += 1
                break
    assert checked >= 8
