"""Where "no answer" begins, set per index without labelled questions from its corpus.

The confidence of an answer is the best cosine between the question and a passage or sentence,
times how much of the question's content words the corpus uses (`query_coverage`: the plain
and the idf-weighted share, averaged). How high that runs
for a question the corpus cannot answer depends on the corpus (technical prose is close to any
technical question), so a fixed threshold does not transfer. At ingest, a fixed bank of questions
about unrelated subjects (`data/unrelated_questions.txt`) is asked of the new index; the threshold
is where a confidence would be an outlier among them: their mean plus `SPREAD` standard deviations.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources
from typing import Any

import numpy as np

from ingest.embedding import Embedder
from ingest.lexical import query_coverage, tokenize

SPREAD = 3.4  # standard deviations above the unrelated questions' mean (chosen on the tuning corpora)


# How the confidence measures the question's words: recorded with the threshold, which is on its scale.
COVERAGE = "plain and idf-weighted share of content words, averaged"


def confidence(similarity: float, coverage: float) -> float:
    return similarity * coverage


def unrelated_questions() -> list[str]:
    text = resources.files("ingest").joinpath("data/unrelated_questions.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def calibrate(
    embedder: Embedder, passage_vectors: np.ndarray, sentence_vectors: np.ndarray, lexical_texts: list[str]
) -> dict[str, Any]:
    """The threshold for this index, and the figures it came from (recorded in the manifest)."""
    questions = unrelated_questions()
    frequency = Counter(token for tokens in tokenize(lexical_texts) for token in set(tokens))
    queries = np.asarray(embedder.embed_documents(questions), dtype=np.float32)
    scores = []
    for query, tokens in zip(queries, tokenize(questions), strict=True):
        best = max(
            float((passage_vectors @ query).max(initial=0.0)) if len(passage_vectors) else 0.0,
            float((sentence_vectors @ query).max(initial=0.0)) if len(sentence_vectors) else 0.0,
        )
        coverage = query_coverage(tokens, lambda t: frequency[t], len(lexical_texts))
        scores.append(confidence(best, coverage))
    values = np.asarray(scores)
    mean, sd = float(values.mean()), float(values.std())
    return {
        "method": "unrelated questions: mean + spread × sd of their confidence",
        "coverage": COVERAGE,
        "questions": len(questions),
        "mean": round(mean, 4),
        "sd": round(sd, 4),
        "spread": SPREAD,
        "threshold": round(mean + SPREAD * sd, 4),
    }
