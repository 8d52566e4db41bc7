"""Confidence: whether the corpus answers the question at all ("no answer" below a threshold)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ingest.calibration import confidence as answer_confidence
from ingest.lexical import tokenize
from service.retrieval.candidates import Signals


class AnswerGate(Protocol):
    """How confident the signals are that the corpus answers, and whether that is enough."""

    def confidence(self, signals: Signals) -> float: ...

    def answerable(self, confidence: float) -> bool: ...

    def reason(self, question: str, confidence: float) -> str: ...


class CalibratedConfidence:
    """The best cosine with a passage or sentence × the share of question words the corpus
    knows, against the threshold calibrated at ingest."""

    def __init__(self, threshold: float, document_frequency: Callable[[str], int] | None = None) -> None:
        self.threshold = threshold
        self.document_frequency = document_frequency

    def confidence(self, signals: Signals) -> float:
        # A question can resemble the corpus in embedding space ("Moscow" in a question about a
        # TV tower) yet use words the corpus never does; both have to hold for an answer.
        similarity = max([*signals.dense.values(), *signals.sentence_scores.values()], default=0.0)
        return answer_confidence(similarity, signals.coverage)

    def answerable(self, confidence: float) -> bool:
        return confidence >= self.threshold

    def reason(self, question: str, confidence: float) -> str:
        """Why nothing answers, in the user's words: the question's words the documents never
        use, else how far the closest passage is from this corpus's threshold."""
        unknown = []
        if self.document_frequency is not None:
            for word in question.split():
                tokens = tokenize([word])[0]
                if tokens and not any(self.document_frequency(t) for t in tokens):
                    unknown.append(word.strip(".,;:!?()[]{}\"'`"))
        closest = (
            f"the closest passages match it at {confidence:.2f}, and this corpus answers from {self.threshold:.2f}"
        )
        if unknown:
            words = ", ".join(f"'{w}'" for w in dict.fromkeys(unknown))
            return f"The documents never use {words}; {closest}."
        return f"Nothing in the documents is close enough to this question: {closest}."
