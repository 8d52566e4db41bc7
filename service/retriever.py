"""The one search path that the service, the CLI and the evaluation all use.

A `Retriever` composes the pieces of `service.retrieval`: candidate pools, filters, a ranker
per mode, the passages shown, an answer selector and a confidence gate. Another piece (a
reranker, an LLM reader) is one more attribute here and one more module there.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from ingest.calibration import COVERAGE
from ingest.chunking import Sentence
from ingest.embedding import Embedder
from ingest.index_store import LoadedIndex
from ingest.pipeline import RetrievalSettings
from service.retrieval.answers import AnswerSelector, BestSentence, Choice, continues, leans_back
from service.retrieval.candidates import CANDIDATES, CandidatePools, CandidateSource, Signals
from service.retrieval.confidence import AnswerGate, CalibratedConfidence
from service.retrieval.filtering import DIRECT_SCORING_LIMIT, Filters, PassageFilter, UnknownDocument
from service.retrieval.fusion import DEFAULT_MODE, MODES, Ranker, UnknownMode, rankers
from service.retrieval.highlight import CalibratedHighlight
from service.retrieval.loading import load_serving, verify_serving
from service.retrieval.passages import SameText, overlaps
from service.retrieval.results import Answer, Hit, Source

__all__ = [
    "CANDIDATES",
    "DEFAULT_MODE",
    "DIRECT_SCORING_LIMIT",
    "MODES",
    "Answer",
    "Filters",
    "Hit",
    "Retriever",
    "Signals",
    "Source",
    "UnknownDocument",
    "UnknownMode",
    "continues",
    "leans_back",
    "open_retriever",
    "overlaps",
    "verify_serving",
]


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: RetrievalSettings | None = None) -> None:
        self.index = index
        self.embedder = embedder
        stored = index.manifest.get("retrieval") or {}
        if "lexical_weight" in stored:  # an index from before the answer had its own weight used the fusion's
            stored = {"answer_lexical_weight": stored["lexical_weight"], **stored}
        # An index calibrated before the idf-weighted coverage keeps the plain share its threshold is on.
        weighted_coverage = (index.manifest.get("calibration") or {}).get("coverage") == COVERAGE
        # The pieces that depend on the index alone, built once and shared by `with_settings`.
        self.candidates: CandidateSource = CandidatePools(index, embedder, weighted_coverage)
        self.passage_filter = PassageFilter(index, self.candidates)
        self.same_text = SameText(index)
        self.highlight = CalibratedHighlight(index)
        self._tune(settings or RetrievalSettings(**stored))

    def _tune(self, settings: RetrievalSettings) -> None:
        """The pieces that the retrieval settings weigh or threshold."""
        self.settings = settings
        self._rankers: dict[str, Ranker] = rankers(settings)
        self.answer_selector: AnswerSelector = BestSentence(self.index, settings.answer_lexical_weight)
        self.gate: AnswerGate = CalibratedConfidence(
            settings.answerable_threshold, self.index.lexical.document_frequency
        )

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self._rankers)

    def with_settings(self, settings: RetrievalSettings) -> Retriever:
        clone = copy.copy(self)
        clone._tune(settings)
        return clone

    # --- signals, filters, answers: each delegated to its piece ---------------------------

    def signals(self, question: str, pool: int | None = None) -> Signals:
        return self.candidates.signals(question, pool)

    def _hybrid(self, signals: Signals) -> dict[int, float]:
        return self._rankers["hybrid"](signals)

    def unknown_documents(self, doc_ids: Iterable[str]) -> list[str]:
        return self.passage_filter.unknown_documents(doc_ids)

    def admitted(self, filters: Filters) -> list[int]:
        """Numbers of the passages that a filter admits, in index order."""
        return self.passage_filter.admitted(filters)

    def filtered(self, question: str, signals: Signals, filters: Filters) -> Signals:
        return self.passage_filter.filtered(question, signals, filters)

    def best_sentence(self, chunk_number: int, signals: Signals) -> Sentence | None:
        return self.answer_selector.best_sentence(chunk_number, signals)

    # --- the search path ----------------------------------------------------------------

    def answer(
        self,
        question: str,
        k: int = 5,
        mode: str = DEFAULT_MODE,
        signals: Signals | None = None,
        *,
        filters: Filters | None = None,
    ) -> Answer:
        """Top-k passages, best first, never two that overlap or repeat the same text; with
        `filters`, only passages they admit, and the confidence is over those alone."""
        ranker = self._rankers.get(mode)
        if ranker is None:
            raise UnknownMode(f"unknown mode '{mode}' (choose from {', '.join(self._rankers)})")
        signals = signals or self.signals(question)
        if filters is not None:
            signals = self.filtered(question, signals, filters)
        ranked = sorted(ranker(signals).items(), key=lambda item: (-item[1], item[0]))
        kept: list[Hit] = []
        choices: list[Choice | None] = []
        shown: set[int] = set()  # passages kept, or listed as another source of a kept one
        for chunk_number, score in ranked:
            # One passage past k when k is 1: the highlight weighs the first against the next.
            if len(kept) == max(k, 2):
                break
            chunk = self.index.chunks[chunk_number]
            if chunk_number in shown or any(overlaps(chunk, hit.chunk) for hit in kept):
                continue
            # Same words in other documents: one passage, every source listed.
            twins = [n for n in self.same_text.twins(chunk_number) if n not in shown]
            shown.update([chunk_number, *twins])
            also_in = tuple(self.same_text.source(n) for n in twins)
            choice = self.answer_selector.choose(chunk_number, signals) if len(kept) < k else None
            answer = None if choice is None else choice.sentence
            choices.append(choice)
            document = self.index.documents[chunk.doc_id]
            kept.append(Hit(len(kept) + 1, score, chunk, document, answer, also_in, number=chunk_number))
        confidence = self.gate.confidence(signals)
        answerable = self.gate.answerable(confidence)
        if kept and choices[0] is not None and answerable:
            kept[0] = self._with_highlight(kept[0], choices[0], signals, kept[1].score if len(kept) > 1 else 0.0)
        reason = None if answerable else self.gate.reason(question, confidence)
        return Answer(kept[:k], answerable, confidence, reason)

    def _with_highlight(self, hit: Hit, choice: Choice, signals: Signals, next_score: float) -> Hit:
        features = self.highlight.signals(signals, choice, hit.chunk.text, hit.score, next_score)
        probability = self.highlight.confidence(features)
        return replace(hit, highlighted=self.highlight.highlighted(probability), answer_confidence=probability)

    def search(
        self, question: str, k: int = 5, mode: str = DEFAULT_MODE, *, filters: Filters | None = None
    ) -> list[Hit]:
        return self.answer(question, k, mode, filters=filters).hits


def open_retriever(
    index_dir: Path,
    model_dir: Path | None,
    expected_model_sha256: str,
    encoder_threads: int = 2,
    batch_queries: bool = False,
    batch_encoder_threads: int = 1,
    verified_manifest_sha256: str | None = None,
) -> Retriever:
    """A Retriever over the verified index at `index_dir` (see `service.retrieval.loading`)."""
    index, embedder = load_serving(
        index_dir,
        model_dir,
        expected_model_sha256,
        encoder_threads,
        batch_queries,
        batch_encoder_threads,
        verified_manifest_sha256,
    )
    return Retriever(index, embedder)
