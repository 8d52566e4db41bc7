"""The "no answer" threshold is two-sided: unrelated questions below it, the corpus's own above."""

from __future__ import annotations

import numpy as np

from ingest import calibration
from tests.conftest import FakeEmbedder


def test_heading_questions_are_the_distinct_last_titles_of_two_words_or_more() -> None:
    sections = ["Install › Getting pip", "Install › Getting pip", "Usage", None, "A › B › Build the docs"]
    assert calibration.heading_questions(sections) == ["Build the docs", "Getting pip"]
    many = [f"Title number {n:03d}" for n in range(200)]
    chosen = calibration.heading_questions(many)
    assert len(chosen) == calibration.PSEUDO_QUESTIONS and chosen[0] == "Title number 000"


def _index(embedder: FakeEmbedder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    vectors = embedder.embed_documents(texts)
    return vectors, vectors


def test_the_threshold_is_at_most_the_corpus_own_questions_percentile() -> None:
    embedder = FakeEmbedder()
    texts = [f"Getting started with topic {n}: install and configure topic {n}" for n in range(40)]
    sections = [f"Guide › Topic {n} setup" for n in range(40)]
    passages, sentences = _index(embedder, texts)
    result = calibration.calibrate(embedder, passages, sentences, texts, sections)
    assert result["heading_questions"] == 40
    assert result["threshold"] == min(result["unrelated_threshold"], result["heading_threshold"])
    assert abs(result["unrelated_threshold"] - (result["mean"] + calibration.SPREAD * result["sd"])) < 1e-3
    without = calibration.calibrate(embedder, passages, sentences, texts)
    assert without["heading_threshold"] is None
    assert without["threshold"] == without["unrelated_threshold"]
