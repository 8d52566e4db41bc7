"""The Retriever against references: brute-force cosine, BM25 order, no overlaps, shared sources."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from ingest.index_store import load_index
from ingest.lexical import tokenize
from ingest.pipeline import RetrievalSettings, build_index
from service.retriever import Retriever, UnknownMode
from tests.conftest import CORPUS, FakeEmbedder

QUESTIONS = ["Why did ISIS attack Russia?", "Tajik community ties", "Wagner Group in Palmyra", "gas plant Syria"]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    target = tmp_path_factory.mktemp("retriever") / "index"
    build_index(CORPUS, target, FakeEmbedder())
    return Retriever(load_index(target), FakeEmbedder())


def test_dense_mode_matches_brute_force_cosine(retriever: Retriever) -> None:
    embedder = FakeEmbedder()
    vectors = retriever.index.dense.reconstruct_n(0, retriever.index.dense.ntotal)
    for question in QUESTIONS:
        expected = np.argsort(-(vectors @ embedder.embed_query(question)), kind="stable")[:5]
        hits = retriever.search(question, 5, "dense")
        assert [retriever.index.chunks.index(h.chunk) for h in hits] == list(expected)
        assert [h.score for h in hits] == pytest.approx(
            sorted((vectors @ embedder.embed_query(question))[expected], reverse=True), abs=1e-5
        )


def test_lexical_mode_follows_bm25(retriever: Retriever) -> None:
    for question in QUESTIONS:
        scores = retriever.index.lexical.scores(tokenize([question])[0])
        hits = retriever.search(question, 3, "lexical")
        got = [scores[retriever.index.chunks.index(h.chunk)] for h in hits]
        assert got == sorted(got, reverse=True)
        assert got[0] == pytest.approx(scores.max())


def test_hybrid_with_only_dense_weight_is_dense(retriever: Retriever) -> None:
    dense_only = retriever.with_settings(RetrievalSettings(1.0, 0.0, 0.0, 0.0))
    for question in QUESTIONS:
        assert [h.chunk for h in dense_only.search(question, 5, "hybrid")] == [
            h.chunk for h in retriever.search(question, 5, "dense")
        ]


def test_answers_lie_inside_their_passage(retriever: Retriever) -> None:
    for question in QUESTIONS:
        for hit in retriever.search(question, 5):
            assert hit.answer is not None
            assert hit.chunk.start <= hit.answer.start < hit.answer.end <= hit.chunk.end


def test_passages_never_overlap(retriever: Retriever) -> None:
    for question in QUESTIONS:
        spans = sorted((h.chunk.start, h.chunk.end) for h in retriever.search(question, 20))
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_unknown_mode(retriever: Retriever) -> None:
    with pytest.raises(UnknownMode, match="unknown mode"):
        retriever.search("anything", 3, "psychic")


def test_identical_text_in_two_documents_is_one_passage_with_both_sources(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shared = "The harbour of Port Example silted up in 1820 and the merchants left for the north."
    for name, intro in (("a", "Alpha chronicle opens here."), ("b", "Beta annals begin now.")):
        (corpus / f"{name}.txt").write_text(f"{intro}\nFirst heading\n{shared}\n", encoding="utf-8")
        (corpus / f"{name}.meta.json").write_text(json.dumps({"doc_id": name, "title": name.upper()}))
    build_index(corpus, tmp_path / "index", FakeEmbedder())
    retriever = Retriever(load_index(tmp_path / "index"), FakeEmbedder())
    hits = retriever.search("When did the harbour silt up?", 5)
    with_text = [h for h in hits if h.chunk.text == shared]
    assert len(with_text) == 1
    other = {with_text[0].chunk.doc_id} ^ {"a", "b"}
    assert [s.doc_id for s in with_text[0].also_in] == list(other)
    source = with_text[0].also_in[0]
    assert load_index(tmp_path / "index").documents[source.doc_id].text[source.start : source.end] == shared
