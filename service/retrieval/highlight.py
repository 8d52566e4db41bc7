"""Whether the answer sentence is likely right enough to highlight: a calibrated confidence.

A wrong highlight is worse than none: it tells the reader where to look, and points elsewhere.
The rank-1 passage's answer sentence is highlighted when a logistic model of four signals says
it covers the answer with probability >= THRESHOLD; otherwise the passage is shown without one.
The model and THRESHOLD were fitted on seven tuning corpora and chosen leave-one-corpus-out
(`eval/decide.py`, docs/evaluation.md): THRESHOLD is the lowest at which the highlighted
sentences of every training corpus cover the evidence at least 70% of the time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ingest.index_store import LoadedIndex
from ingest.lexical import tokenize
from service.retrieval.answers import Choice
from service.retrieval.candidates import Signals


@dataclass(frozen=True)
class HighlightModel:
    margin: float = 1.784  # the sentence's combined score above the passage's next sentence
    gap: float = 2.737  # the passage's fused score above the next passage's
    behind_best: float = -0.900  # the best sentence cosine in the corpus minus this sentence's
    passage_coverage: float = 2.405  # idf share of the question's known words in the passage
    bias: float = -1.337
    threshold: float = 0.71


@dataclass(frozen=True)
class HighlightSignals:
    margin: float
    gap: float
    behind_best: float
    passage_coverage: float


def passage_coverage(index: LoadedIndex, tokens: list[str], passage_text: str) -> float:
    """The share of the question's idf weight (over the words the corpus knows) that the passage
    holds: a passage about the question's subject may still lack the very thing asked."""
    size = len(index.chunks)
    present = set(tokenize([passage_text])[0])
    known = present_weight = 0.0
    for token in set(tokens):
        frequency = index.lexical.document_frequency(token)
        if not frequency:
            continue
        weight = math.log(1 + (size - frequency + 0.5) / (frequency + 0.5))
        known += weight
        if token in present:
            present_weight += weight
    return present_weight / known if known else 0.0


class CalibratedHighlight:
    def __init__(self, index: LoadedIndex, model: HighlightModel | None = None) -> None:
        self.index = index
        self.model = model or HighlightModel()

    def signals(
        self, signals: Signals, choice: Choice, passage_text: str, score: float, next_score: float
    ) -> HighlightSignals:
        best = max(signals.sentence_scores.values(), default=choice.cosine)
        return HighlightSignals(
            margin=choice.margin,
            gap=score - next_score,
            behind_best=best - choice.cosine,
            passage_coverage=passage_coverage(self.index, signals.tokens, passage_text),
        )

    def confidence(self, features: HighlightSignals) -> float:
        m = self.model
        z = (
            m.bias
            + m.margin * features.margin
            + m.gap * features.gap
            + m.behind_best * features.behind_best
            + m.passage_coverage * features.passage_coverage
        )
        return 1 / (1 + math.exp(-z))

    def highlighted(self, confidence: float) -> bool:
        return confidence >= self.model.threshold
