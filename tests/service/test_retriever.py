"""The Retriever against references: brute-force cosine, BM25 order, no overlaps, shared sources."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from ingest import calibration
from ingest.chunking import Sentence
from ingest.index_store import load_index
from ingest.lexical import tokenize
from ingest.pipeline import RetrievalSettings, build_index
from service.retrieval import candidates as candidates_module
from service.retrieval import filtering as filtering_module
from service.retrieval.highlight import CalibratedHighlight, HighlightSignals
from service.retriever import Filters, Retriever, UnknownDocument, UnknownMode, continues, leans_back
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


def test_an_answer_is_one_whole_sentence_or_two(retriever: Retriever) -> None:
    """The answer is a sentence of its passage, with the one after it when that continues it,
    else with the one before it when it refers back to it: it starts and ends where sentences
    do, and is never more than two."""
    pairs = 0
    for question in QUESTIONS:
        for hit in retriever.search(question, 5):
            assert hit.answer is not None
            number = retriever.index.chunks.index(hit.chunk)
            sentences = [retriever.index.sentences[i] for i in retriever.index.chunk_sentences[number]]
            first = next(i for i, s in enumerate(sentences) if s.start == hit.answer.start)
            last = next(i for i, s in enumerate(sentences) if s.end == hit.answer.end)
            assert 0 <= last - first <= 1
            if last == first:
                continue
            pairs += 1
            text = hit.document.text
            continued = continues(text, sentences[first], sentences[last])
            assert continued or leans_back(text, sentences[first], sentences[last])
    assert pairs > 0  # the article's paragraphs hold several sentences: some answers are two


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("By default, short searches are ignored. However, a shorter limit may be set.", True),
        ("Set it to true. This halts the build on a warning.", True),
        ("Set it to true. Thistle is a plant.", False),
        ("Set it to true. The build then halts on a warning.", False),
        ("Set it to true.\n\nHowever, a new paragraph starts here.", False),
    ],
)
def test_what_leans_on_the_sentence_before(text: str, expected: bool) -> None:
    cut = text.index(".") + 1
    following = len(text) - len(text[cut:].lstrip())
    assert leans_back(text, Sentence("d", 0, cut), Sentence("d", following, len(text))) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pip supports basic authentication. This is done by\nputting the name in the URL.", True),
        ("The current version of pip works on:\n- Windows, Linux and macOS.", True),
        ("To install the packages, you can run:\n\n```\npip install -r requirements.txt\n```", True),
        ("Dashes have to be replaced.\n\nA new paragraph starts here.", False),
        ("These are the flags.\n- `PIP_TIMEOUT=60` is the same as `--timeout=60`", False),
        ("See the table.\n| a | b |", False),
        ("Run it like this.\n```\npip --help\n```", False),
        ("Two steps follow.\n2. Build the wheel.", False),
    ],
)
def test_what_continues_a_sentence(text: str, expected: bool) -> None:
    cut = text.index(".") + 1 if not text.split("\n")[0].endswith(":") else text.index(":") + 1
    following = len(text) - len(text[cut:].lstrip())
    assert continues(text, Sentence("d", 0, cut), Sentence("d", following, len(text))) is expected


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


# --- filters --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(mixed_index: Path) -> Retriever:
    return Retriever(load_index(mixed_index), FakeEmbedder())


def numbers_of(retriever: Retriever, doc_id: str) -> list[int]:
    return [n for n, c in enumerate(retriever.index.chunks) if c.doc_id == doc_id]


def exact_hybrid(retriever: Retriever, question: str, numbers: list[int]) -> dict[int, float]:
    """The hybrid score of each passage computed from scratch: no candidate pools."""
    index, weights = retriever.index, retriever.settings
    query = FakeEmbedder().embed_query(question)
    vectors = index.dense.reconstruct_n(0, index.dense.ntotal)
    sentence_vectors = index.sentence_dense.reconstruct_n(0, index.sentence_dense.ntotal)
    bm25 = index.lexical.scores(tokenize([question])[0])
    return {
        n: weights.dense_weight * float(vectors[n] @ query)
        + weights.sentence_weight * max(float(sentence_vectors[i] @ query) for i in index.chunk_sentences[n])
        + weights.lexical_weight * float(bm25[n] / bm25.max())
        for n in numbers
    }


def test_filter_finds_a_document_outside_every_candidate_pool(
    mixed: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pools of 100 in a corpus of some 230 passages: a pool of 200 would hold nearly all of them.
    monkeypatch.setattr(candidates_module, "CANDIDATES", 100)
    question = "Where do manual pages for each architecture go?"
    harbour = numbers_of(mixed, "harbour")
    signals = mixed.signals(question)
    # The premise: unfiltered, no signal's top 100 holds the note's passage or its sentences.
    assert len(mixed.index.chunks) > 2 * candidates_module.CANDIDATES
    assert not set(harbour) & (set(signals.dense) | set(signals.sentence) | set(signals.lexical))
    assert not {i for n in harbour for i in mixed.index.chunk_sentences[n]} & set(signals.sentence_scores)
    hits = mixed.search(question, 5, filters=Filters(doc_ids=frozenset({"harbour"})))
    assert [h.chunk.doc_id for h in hits] == ["harbour"]
    assert hits[0].score == pytest.approx(exact_hybrid(mixed, question, harbour)[harbour[0]], abs=1e-5)
    assert hits[0].answer is not None and hits[0].chunk.start <= hits[0].answer.start


def test_filtered_ranking_is_the_exact_ranking_of_the_admitted_passages(mixed: Retriever) -> None:
    question = "Which directories must be in the root filesystem?"
    article = numbers_of(mixed, "insider-2024-isis-k-crocus")
    expected = sorted(exact_hybrid(mixed, question, article).items(), key=lambda item: (-item[1], item[0]))[:5]
    hits = mixed.search(question, 5, filters=Filters(doc_ids=frozenset({"insider-2024-isis-k-crocus"})))
    assert [mixed.index.chunks.index(h.chunk) for h in hits] == [n for n, _ in expected]
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_mode_keeps_to_the_filter(mixed: Retriever, mode: str) -> None:
    filters = Filters(doc_ids=frozenset({"insider-2024-isis-k-crocus", "harbour"}))
    hits = mixed.search("root filesystem Taliban harbour", 10, mode, filters=filters)
    assert hits and {h.chunk.doc_id for h in hits} <= {"insider-2024-isis-k-crocus", "harbour"}


def test_section_filter_is_a_case_insensitive_prefix(mixed: Retriever) -> None:
    prefix = "Chapter 3. The Root Filesystem › 3.7. /etc"
    hits = mixed.search("configuration files", 20, filters=Filters(section=prefix.upper()))
    expected = [c for c in mixed.index.chunks if (c.section or "").startswith(prefix)]
    assert len(hits) == len(expected) > 1
    assert all((h.chunk.section or "").startswith(prefix) for h in hits)


def test_speaker_filter_is_case_insensitive_and_exact(mixed: Retriever) -> None:
    hits = mixed.search("Who is behind the attack?", 20, filters=Filters(speaker="david sharp"))
    assert hits and {h.chunk.speaker for h in hits} == {"David Sharp"}
    assert len(hits) == sum(c.speaker == "David Sharp" for c in mixed.index.chunks)
    assert mixed.search("Who is behind the attack?", 5, filters=Filters(speaker="david")) == []


def test_filters_combine_and_an_empty_selection_answers_nothing(mixed: Retriever) -> None:
    answer = mixed.answer("manual pages", 5, filters=Filters(doc_ids=frozenset({"fhs-3.0"}), speaker="David Sharp"))
    assert answer.hits == [] and not answer.answerable


def test_unknown_document_in_a_filter_is_named(mixed: Retriever) -> None:
    with pytest.raises(UnknownDocument, match="no-such-doc"):
        mixed.search("anything", 3, filters=Filters(doc_ids=frozenset({"harbour", "no-such-doc"})))


def test_large_selections_search_enlarged_pools(mixed: Retriever, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filtering_module, "DIRECT_SCORING_LIMIT", 0)
    monkeypatch.setattr(candidates_module, "CANDIDATES", 5)
    question = "Which directories must be in the root filesystem?"
    article = set(numbers_of(mixed, "insider-2024-isis-k-crocus"))
    signals = mixed.signals(question)
    assert not article & (set(signals.dense) | set(signals.sentence) | set(signals.lexical))
    hits = mixed.search(question, 3, filters=Filters(doc_ids=frozenset({"insider-2024-isis-k-crocus"})))
    assert len(hits) == 3 and {h.chunk.doc_id for h in hits} == {"insider-2024-isis-k-crocus"}


def test_query_path_never_scores_the_whole_corpus(retriever: Retriever, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-query lexical work is bounded: no BM25 array over every passage or sentence."""

    def whole_corpus(*_: object) -> None:
        raise AssertionError("scored every text")

    expected = {q: [h.chunk for h in retriever.search(q, 5)] for q in QUESTIONS}
    monkeypatch.setattr(type(retriever.index.lexical), "scores", whole_corpus)
    doc_id = retriever.index.chunks[0].doc_id
    for question in QUESTIONS:
        assert [h.chunk for h in retriever.search(question, 5)] == expected[question]
        for mode in retriever.modes:
            retriever.search(question, 5, mode, filters=Filters(doc_ids=frozenset([doc_id])))


def test_an_index_calibrated_on_the_plain_share_keeps_it(retriever: Retriever) -> None:
    """The threshold is on the scale of the coverage it was calibrated with: an index whose
    calibration does not name the weighted coverage is served the plain share."""
    question = "Moscow tower sourdough bread"
    current = retriever.signals(question).coverage
    assert retriever.index.manifest["calibration"]["coverage"] == calibration.COVERAGE
    manifest = {**retriever.index.manifest, "calibration": {"threshold": 0.5}}
    older = Retriever(dataclasses.replace(retriever.index, manifest=manifest), retriever.embedder)
    plain = older.signals(question).coverage
    tokens = tokenize([question])[0]
    assert plain == retriever.index.lexical.coverage(tokens, weighted=False) and plain != current


def test_the_answer_sentence_weighs_bm25_by_its_own_weight(retriever: Retriever) -> None:
    """Tuning the fusion's BM25 weight leaves the answer sentences alone; the answer's own weight
    at 0 picks the sentence by its cosine alone."""
    fusion_moved = retriever.with_settings(dataclasses.replace(retriever.settings, lexical_weight=0.0))
    cosine_only = retriever.with_settings(dataclasses.replace(retriever.settings, answer_lexical_weight=0.0))
    differs = 0
    for question in QUESTIONS:
        signals = retriever.signals(question)
        for number in list(retriever._hybrid(signals))[:20]:
            chosen = retriever.best_sentence(number, signals)
            assert fusion_moved.best_sentence(number, signals) == chosen
            ids = retriever.index.chunk_sentences[number]
            vectors = retriever.index.sentence_dense.reconstruct_batch(np.asarray(ids, dtype=np.int64))
            best = retriever.index.sentences[ids[int(np.argmax(vectors @ signals.query))]]
            by_cosine = cosine_only.best_sentence(number, signals)
            assert by_cosine is not None and by_cosine.start <= best.start and best.end <= by_cosine.end
            differs += by_cosine != chosen
    assert differs  # the BM25 share does choose some answers


def test_an_index_from_before_the_answer_weight_keeps_its_answers(retriever: Retriever) -> None:
    """An index whose manifest has no answer weight chose its answers with the fusion's BM25
    weight, and still does; one that records its own keeps that."""
    stored = {k: v for k, v in retriever.index.manifest["retrieval"].items() if k != "answer_lexical_weight"}

    def served(retrieval: dict[str, float]) -> float:
        manifest = {**retriever.index.manifest, "retrieval": retrieval}
        return Retriever(
            dataclasses.replace(retriever.index, manifest=manifest), FakeEmbedder()
        ).settings.answer_lexical_weight

    assert served({**stored, "lexical_weight": 0.1}) == 0.1
    assert served({**stored, "lexical_weight": 0.1, "answer_lexical_weight": 0.2}) == 0.2


def test_only_a_confident_rank_1_answer_is_highlighted(retriever: Retriever) -> None:
    """The highlight is the rank-1 passage's, and only while the question is answerable; its
    confidence is the calibrated model's probability, against its threshold."""
    model = CalibratedHighlight(retriever.index)
    for question in QUESTIONS:
        for k in (1, 5):
            answer = retriever.answer(question, k)
            assert len(answer.hits) == min(k, len(answer.hits))
            assert all(not h.highlighted and h.answer_confidence is None for h in answer.hits[1:])
            first = answer.hits[0]
            if not answer.answerable:
                assert not first.highlighted and first.answer_confidence is None
                continue
            assert first.answer_confidence is not None and 0 < first.answer_confidence < 1
            assert first.highlighted == (first.answer_confidence >= model.model.threshold)
    high = model.confidence(dataclasses.replace(_signals(), margin=0.3, gap=0.2, passage_coverage=1.0))
    low = model.confidence(dataclasses.replace(_signals(), margin=0.0, gap=0.0, passage_coverage=0.2))
    assert model.highlighted(high) and not model.highlighted(low)


def _signals() -> HighlightSignals:
    return HighlightSignals(margin=0.1, gap=0.05, behind_best=0.0, passage_coverage=0.5)


def test_no_answer_says_why(retriever: Retriever) -> None:
    strict = retriever.with_settings(dataclasses.replace(retriever.settings, answerable_threshold=0.99))
    answer = strict.answer("How do I brew sourdough bread with a zyxquor starter?", 3)
    assert not answer.answerable and answer.reason is not None
    assert "'zyxquor'" in answer.reason and "0.99" in answer.reason
    assert (
        retriever.with_settings(dataclasses.replace(retriever.settings, answerable_threshold=0.0))
        .answer(QUESTIONS[0], 3)
        .reason
        is None
    )
