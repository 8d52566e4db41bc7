"""Confidence: whether the corpus answers the question at all ("no answer" below a threshold)."""

from __future__ import annotations

from typing import Protocol

from ingest.calibration import confidence as answer_confidence
from service.retrieval.candidates import Signals


class AnswerGate(Protocol):
    """How confident the signals are that the corpus answers, and whether that is enough."""

    def confidence(self, signals: Signals) -> float: ...

    def answerable(self, confidence: float) -> bool: ...


class CalibratedConfidence:
    """The best cosine with a passage or sentence × the share of question words the corpus
    knows, against the threshold calibrated at ingest."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def confidence(self, signals: Signals) -> float:
        # A question can resemble the corpus in embedding space ("Moscow" in a question about a
        # TV tower) yet use words the corpus never does; both have to hold for an answer.
        similarity = max([*signals.dense.values(), *signals.sentence_scores.values()], default=0.0)
        return answer_confidence(similarity, signals.coverage)

    def answerable(self, confidence: float) -> bool:
        return confidence >= self.threshold
