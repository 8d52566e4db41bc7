"""Choose the hybrid weights and the "no answer" threshold on the question set, and estimate
how well the choice carries over to unseen questions by cross-validation."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from eval.questions import Question, Span, evidence_spans, is_relevant
from ingest.pipeline import RetrievalSettings
from service.retriever import Retriever, Signals

GRID_STEP = 0.1
FOLDS = 5

Tick = Callable[[], None]


@dataclass(frozen=True)
class Prepared:
    question: Question
    signals: Signals
    evidence: list[list[Span]]


def prepare(retriever: Retriever, questions: list[Question], tick: Tick) -> list[Prepared]:
    documents = list(retriever.index.documents.values())
    prepared = []
    for question in questions:
        prepared.append(Prepared(question, retriever.signals(question.question), evidence_spans(question, documents)))
        tick()
    return prepared


def weight_grid(step: float = GRID_STEP) -> list[tuple[float, float, float]]:
    steps = round(1 / step)
    return [
        (round(d * step, 3), round(s * step, 3), round((steps - d - s) * step, 3))
        for d, s in itertools.product(range(steps + 1), repeat=2)
        if d + s <= steps
    ]


def reciprocal_ranks(retriever: Retriever, items: list[Prepared]) -> list[float]:
    ranks = []
    for item in items:
        hits = retriever.answer(item.question.question, 10, "hybrid", item.signals).hits
        spans = [Span(h.chunk.doc_id, h.chunk.start, h.chunk.end) for h in hits]
        rank = next((i + 1 for i, span in enumerate(spans) if is_relevant(span, item.evidence)), None)
        ranks.append(1 / rank if rank else 0.0)
    return ranks


def objective(retriever: Retriever, items: list[Prepared]) -> tuple[float, float]:
    ranks = reciprocal_ranks(retriever, items)
    return sum(ranks) / len(ranks), sum(r == 1.0 for r in ranks) / len(ranks)


def best_weights(retriever: Retriever, items: list[Prepared]) -> tuple[RetrievalSettings, tuple[float, float]]:
    scored = []
    for dense, sentence, lexical in weight_grid():
        candidate = replace(retriever.settings, dense_weight=dense, sentence_weight=sentence, lexical_weight=lexical)
        scored.append((objective(retriever.with_settings(candidate), items), candidate))
    # Highest MRR, then Recall@1; ties go to the grid order, which is deterministic.
    (score, chosen) = max(scored, key=lambda pair: pair[0])
    return chosen, score


def calibrate_threshold(confidences: list[tuple[float, bool]]) -> float:
    """The threshold that best separates answerable from off-topic questions (balanced
    accuracy), placed in the middle of the widest gap that achieves it."""
    values = sorted({c for c, _ in confidences})
    cuts = [(a + b) / 2 for a, b in itertools.pairwise(values)] or [values[0] if values else 0.5]
    answerable = [c for c, a in confidences if a]
    off_topic = [c for c, a in confidences if not a]

    def balanced(cut: float) -> float:
        keep = sum(c >= cut for c in answerable) / max(1, len(answerable))
        flag = sum(c < cut for c in off_topic) / max(1, len(off_topic))
        return (keep + flag) / 2

    best = max(balanced(cut) for cut in cuts)
    tied = [cut for cut in cuts if balanced(cut) == best]
    below = [v for v in values if v < min(tied)]
    above = [v for v in values if v > max(tied)]
    low = max(below) if below else min(tied)
    high = min(above) if above else max(tied)
    return round((low + high) / 2, 4)


def tune(retriever: Retriever, prepared: list[Prepared], seed: int = 13) -> dict[str, Any]:
    answerable = [p for p in prepared if p.question.answerable]
    chosen, (mrr, recall1) = best_weights(retriever, answerable)
    # Cross-validation: pick weights on four folds, measure on the fifth.
    shuffled = answerable[:]
    random.Random(seed).shuffle(shuffled)  # noqa: S311 - a reproducible split, not security
    folds = [shuffled[i::FOLDS] for i in range(FOLDS)]
    held_out_ranks: list[float] = []
    fold_weights = []
    for number, fold in enumerate(folds):
        training = [p for i, f in enumerate(folds) if i != number for p in f]
        fold_choice, _ = best_weights(retriever, training)
        fold_weights.append((fold_choice.dense_weight, fold_choice.sentence_weight, fold_choice.lexical_weight))
        held_out_ranks.extend(reciprocal_ranks(retriever.with_settings(fold_choice), fold))
    tuned = retriever.with_settings(chosen)
    confidences = [
        (tuned.answer(p.question.question, 1, "hybrid", p.signals).confidence, p.question.answerable) for p in prepared
    ]
    chosen = replace(chosen, answerable_threshold=calibrate_threshold(confidences))
    return {
        "chosen": asdict(chosen),
        "on_the_set": {"mrr@10": mrr, "recall@1": recall1},
        "cross_validated": {
            "folds": FOLDS,
            "mrr@10": sum(held_out_ranks) / len(held_out_ranks),
            "recall@1": sum(r == 1.0 for r in held_out_ranks) / len(held_out_ranks),
            "fold_weights": fold_weights,
        },
        "confidences": {
            "answerable_min": min(c for c, a in confidences if a),
            "off_topic_max": max((c for c, a in confidences if not a), default=None),
        },
    }
