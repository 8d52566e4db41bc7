"""Where "no answer" begins, set per index without labelled questions from its corpus.

The confidence of an answer is the best cosine between the question and a passage or sentence,
times how much of the question's content words the corpus uses (`query_coverage`: the plain
and the idf-weighted share, averaged). How high that runs
for a question the corpus cannot answer depends on the corpus (technical prose is close to any
technical question), so a fixed threshold does not transfer. At ingest, a fixed bank of questions
about unrelated subjects (`data/unrelated_questions.txt`) is asked of the new index; the threshold
is where a confidence would be an outlier among them: their mean plus `SPREAD` standard deviations.

That side alone refused real questions where the bank spreads wide (an API reference: threshold
0.61, 17 of 40 answerable questions below it). So the threshold is two-sided: it is also at most
the `PSEUDO_PERCENTILE`th percentile of questions the corpus itself asks, its own section titles
put as questions ("Uninstalling packages"): however close unrelated questions come, no more than
that share of in-corpus questions is refused. SPREAD and PSEUDO_PERCENTILE were chosen
leave-one-corpus-out over seven tuning corpora (`eval/decide.py`, docs/evaluation.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from ingest.embedding import Embedder
from ingest.lexical import query_coverage, tokenize

SPREAD = 3.0  # standard deviations above the unrelated questions' mean
PSEUDO_PERCENTILE = 10  # at most this share (%) of the corpus's own heading questions fall below
PSEUDO_QUESTIONS = 80  # heading questions asked, spread evenly over the sorted distinct titles


# How the confidence measures the question's words: recorded with the threshold, which is on its scale.
COVERAGE = "plain and idf-weighted share of content words, averaged"


def confidence(similarity: float, coverage: float) -> float:
    return similarity * coverage


def unrelated_questions() -> list[str]:
    text = resources.files("ingest").joinpath("data/unrelated_questions.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def heading_questions(sections: Sequence[str | None]) -> list[str]:
    """The corpus's own questions: the distinct last titles of its section paths that have two
    words or more, sorted, and at most PSEUDO_QUESTIONS of them taken at an even step."""
    titles = sorted({s.split(" › ")[-1] for s in sections if s and len(s.split(" › ")[-1].split()) >= 2})
    step = max(1, len(titles) // PSEUDO_QUESTIONS)
    return titles[::step][:PSEUDO_QUESTIONS]


def _confidences(
    embedder: Embedder,
    questions: list[str],
    passage_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    frequency: Counter[str],
    texts: int,
) -> np.ndarray:
    """Each question's confidence as the service computes it: best cosine × coverage."""
    if not questions:
        return np.zeros(0)
    queries = np.asarray(embedder.embed_documents(questions), dtype=np.float32)
    scores = []
    for query, tokens in zip(queries, tokenize(questions), strict=True):
        best = max(
            float((passage_vectors @ query).max(initial=0.0)) if len(passage_vectors) else 0.0,
            float((sentence_vectors @ query).max(initial=0.0)) if len(sentence_vectors) else 0.0,
        )
        coverage = query_coverage(tokens, lambda t: frequency[t], texts)
        scores.append(confidence(best, coverage))
    return np.asarray(scores)


def calibrate(
    embedder: Embedder,
    passage_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    lexical_texts: list[str],
    sections: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """The threshold for this index, and the figures it came from (recorded in the manifest)."""
    frequency = Counter(token for tokens in tokenize(lexical_texts) for token in set(tokens))
    vectors = (passage_vectors, sentence_vectors, frequency, len(lexical_texts))
    questions = unrelated_questions()
    values = _confidences(embedder, questions, *vectors)
    mean, sd = float(values.mean()), float(values.std())
    unrelated = mean + SPREAD * sd
    titles = heading_questions(sections or [])
    own = _confidences(embedder, titles, *vectors)
    pseudo = float(np.percentile(own, PSEUDO_PERCENTILE)) if len(own) else None
    threshold = unrelated if pseudo is None else min(unrelated, pseudo)
    return {
        "method": "two-sided: the lower of unrelated questions' mean + spread × sd and a heading-question percentile",
        "coverage": COVERAGE,
        "questions": len(questions),
        "mean": round(mean, 4),
        "sd": round(sd, 4),
        "spread": SPREAD,
        "unrelated_threshold": round(unrelated, 4),
        "heading_questions": len(titles),
        "heading_percentile": PSEUDO_PERCENTILE,
        "heading_threshold": None if pseudo is None else round(pseudo, 4),
        "threshold": round(threshold, 4),
    }
