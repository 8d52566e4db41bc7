"""Fusion: one score per candidate passage from the signals, by mode (hybrid, dense, lexical)."""

from __future__ import annotations

from typing import Protocol

from ingest.errors import CiteqaError
from ingest.pipeline import RetrievalSettings
from service.retrieval.candidates import Signals

MODES = ("hybrid", "dense", "lexical")
DEFAULT_MODE = "hybrid"


class UnknownMode(CiteqaError):
    """A search mode that is not implemented."""


class Ranker(Protocol):
    """Scores the candidate passages, by passage number; higher is better."""

    def __call__(self, signals: Signals) -> dict[int, float]: ...


class HybridFusion:
    """Convex combination of the passage cosine, its best sentence's cosine and max-normalised
    BM25; a passage missing from a signal's candidates gets that signal's lowest seen score."""

    def __init__(self, settings: RetrievalSettings) -> None:
        self.settings = settings

    def __call__(self, signals: Signals) -> dict[int, float]:
        weights = self.settings
        floor_dense = min(signals.dense.values(), default=0.0)
        floor_sentence = min(signals.sentence.values(), default=0.0)
        candidates = set(signals.dense) | set(signals.sentence) | set(signals.lexical)
        return {
            c: weights.dense_weight * signals.dense.get(c, floor_dense)
            + weights.sentence_weight * signals.sentence.get(c, floor_sentence)
            + weights.lexical_weight * signals.lexical.get(c, 0.0)
            for c in candidates
        }


def dense_ranking(signals: Signals) -> dict[int, float]:
    return signals.dense


def lexical_ranking(signals: Signals) -> dict[int, float]:
    return signals.lexical


def rankers(settings: RetrievalSettings) -> dict[str, Ranker]:
    """The ranker of each mode, in the order of MODES."""
    return {"hybrid": HybridFusion(settings), "dense": dense_ranking, "lexical": lexical_ranking}
