"""The scale-path benchmark's synthetic index is one the Retriever answers from as from a real one."""

from __future__ import annotations

from eval.scale_path import SENTENCES_PER_PASSAGE, SyntheticQueries, measure_size, synthetic_index
from service.retriever import Retriever


def test_synthetic_index_answers_with_sentences_inside_passages() -> None:
    index, centres, sample = synthetic_index(1000, lambda _: None)
    assert len(index.sentences) == SENTENCES_PER_PASSAGE * len(index.chunks) == index.sentence_dense.ntotal
    question = " ".join(f"w{w}" for w in sample[3][:4])
    retriever = Retriever(index, SyntheticQueries(None, {question: centres[0]}))
    hits = retriever.search(question, 5)
    assert len(hits) == 5
    for hit in hits:
        assert hit.answer is not None and hit.chunk.start <= hit.answer.start < hit.answer.end <= hit.chunk.end


def test_measure_size_reports_percentiles_and_memory() -> None:
    row = measure_size(1000, None, lambda _: None)
    assert row["n"] == 200 and 0 < row["p50_ms"] <= row["p95_ms"]
    assert row["dense_index"] == "flat" and row["rss_mb_per_million"] > 0
