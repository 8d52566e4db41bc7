"""Run a system over the question set and score it: ranx for ranking metrics, the rest here."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eval.questions import Question, evidence_spans, is_relevant
from eval.systems import Result, System
from ingest.documents import Document

RANKING_METRICS = ["recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10"]
DEPTH = 10

Tick = Callable[[], None]


@dataclass
class Outcome:
    """What one system did with one question."""

    question: Question
    rank: int | None  # rank of the first relevant passage, None when none in the top DEPTH
    answer_hit: bool | None  # the rank-1 answer sentence covers the evidence (answerable only)
    speaker_ok: bool | None  # the first relevant passage names the expected speaker
    answerable: bool | None  # the system's own flag
    latency_ms: float
    result: Result = field(repr=False)


def judge(question: Question, result: Result, documents: list[Document], latency_ms: float) -> Outcome:
    if not question.answerable:
        return Outcome(question, None, None, None, result.answerable, latency_ms, result)
    evidence = evidence_spans(question, documents)
    relevant = [is_relevant(span, evidence) for span in result.spans]
    rank = relevant.index(True) + 1 if True in relevant else None
    answer_hit = None
    if result.answers and result.answers[0] is not None:
        answer_hit = is_relevant(result.answers[0], evidence)
    speaker_ok = None
    if question.speaker is not None and rank is not None and result.speakers[rank - 1] is not None:
        speaker_ok = result.speakers[rank - 1] == question.speaker
    elif question.speaker is not None and rank is not None:
        speaker_ok = False
    return Outcome(question, rank, answer_hit, speaker_ok, result.answerable, latency_ms, result)


def run_system(system: System, questions: list[Question], documents: list[Document], tick: Tick) -> list[Outcome]:
    outcomes = []
    for question in questions:
        started = time.perf_counter()
        result = system(question.question, DEPTH)
        latency = (time.perf_counter() - started) * 1000
        outcomes.append(judge(question, result, documents, latency))
        tick()
    return outcomes


def ranking_metrics(outcomes: list[Outcome]) -> dict[str, float]:
    """Each answerable question has one relevant item, "answer": the first passage covering
    its evidence. Later passages covering it again are not counted twice."""
    from ranx import Qrels, Run, evaluate

    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for outcome in outcomes:
        if not outcome.question.answerable:
            continue
        qid = outcome.question.qid
        qrels[qid] = {"answer": 1}
        ranking = {f"passage-{i}": float(DEPTH - i) for i in range(len(outcome.result.spans))}
        if outcome.rank is not None:
            del ranking[f"passage-{outcome.rank - 1}"]
            ranking["answer"] = float(DEPTH - outcome.rank + 1)
        run[qid] = ranking or {"nothing": 0.0}
    scores = evaluate(Qrels(qrels), Run(run), RANKING_METRICS)
    return {name: float(value) for name, value in scores.items()}


def _share(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(outcomes: list[Outcome]) -> dict[str, Any]:
    answerable = [o for o in outcomes if o.question.answerable]
    off_topic = [o for o in outcomes if not o.question.answerable]
    latencies = sorted(o.latency_ms for o in outcomes)
    summary: dict[str, Any] = dict(ranking_metrics(outcomes))
    gives_answers = any(o.answer_hit is not None for o in answerable)
    gives_speakers = any(s is not None for o in outcomes for s in o.result.speakers)
    summary["answer_hit@1"] = _share([bool(o.answer_hit) for o in answerable]) if gives_answers else None
    if gives_answers and all(o.result.highlighted is not None for o in answerable):
        # A highlight is shown only when confident: how often, and how often then right.
        highlighted = [o for o in answerable if o.result.highlighted]
        summary["highlight_rate"] = _share([bool(o.result.highlighted) for o in answerable])
        summary["highlight_precision"] = _share([bool(o.answer_hit) for o in highlighted])
    with_speaker = [bool(o.speaker_ok) for o in answerable if o.question.speaker and o.rank]
    summary["speaker_accuracy"] = _share(with_speaker) if gives_speakers else None
    if all(o.answerable is not None for o in outcomes):
        flagged = [o for o in outcomes if o.answerable is False]
        true_flags = [o for o in flagged if not o.question.answerable]
        summary["no_answer_precision"] = len(true_flags) / len(flagged) if flagged else None
        summary["no_answer_recall"] = _share([o.answerable is False for o in off_topic])
        summary["answerable_wrongly_flagged"] = _share([o.answerable is False for o in answerable])
        near = [o for o in off_topic if o.question.topic == "near"]
        summary["near_topic_flagged"] = _share([o.answerable is False for o in near])
    summary["latency_p50_ms"] = statistics.median(latencies)
    summary["latency_p95_ms"] = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    summary["questions"] = len(outcomes)
    summary["answerable_questions"] = len(answerable)
    return summary


def misses(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Answerable questions whose answer was not at rank 1, for the report's appendix."""
    return [
        {"id": o.question.qid, "question": o.question.question, "type": o.question.kind, "rank": o.rank}
        for o in outcomes
        if o.question.answerable and o.rank != 1
    ]
