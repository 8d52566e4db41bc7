"""The question set is well formed: every evidence quote is an exact substring of the corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from eval.questions import Span, covers_half, evidence_spans, load_questions, quote_pattern
from eval.suite import SUITE, EvalCorpus
from ingest.documents import Document, load_corpus
from ingest.errors import CiteqaError


def test_every_evidence_quote_is_in_the_corpus(article: Document) -> None:
    for question in load_questions():
        for quote, spans in zip(question.evidence, evidence_spans(question, [article]), strict=True):
            assert spans, f"{question.qid}: {quote!r} not in the corpus"
            assert all(article.text[s.start : s.end] == quote for s in spans)


def test_question_mix() -> None:
    questions = load_questions()
    kinds = Counter(q.kind for q in questions)
    assert len(questions) >= 80
    assert kinds["off_topic"] >= 10
    assert all(kinds[k] >= 8 for k in ("factual", "paraphrase", "expert", "continued"))
    assert len({q.qid for q in questions}) == len(questions)
    assert len({q.question for q in questions}) == len(questions)
    assert all(not q.evidence for q in questions if q.kind == "off_topic")


def test_relevance_rule_is_half_coverage() -> None:
    evidence = Span("d", 100, 200)
    assert covers_half(Span("d", 150, 400), evidence)
    assert not covers_half(Span("d", 151, 400), evidence)
    assert not covers_half(Span("other", 0, 1000), evidence)


def test_a_quote_matches_its_words_whatever_markdown_escapes_or_quotes_them() -> None:
    """A quote written from one reading of a page still finds its words in another: Markdown's
    escapes and a quotation's '>' marks at a line break are markup, not words."""
    pattern = quote_pattern("set GIT\\_COMMITTER\\_DATE and run exec \\<cmd> after the match block")
    assert pattern.search("set GIT_COMMITTER_DATE and run exec <cmd> after the\n>    match block")
    assert pattern.search("set GIT\\_COMMITTER\\_DATE and run exec \\<cmd> after the match block")
    assert not pattern.search("set GIT_COMMITTER_DATE and run exec cmd after the match block")
    assert not quote_pattern("a b").search("a > c b")


def test_the_held_out_article_questions_quote_the_article(article: Document) -> None:
    """The second article set, written by someone who saw neither the first set nor the code."""
    questions = load_questions(Path(__file__).resolve().parents[2] / "eval/questions/article-heldout.jsonl")
    assert sum(q.answerable for q in questions) >= 40 and sum(not q.answerable for q in questions) >= 6
    assert len({q.qid for q in questions}) == len(questions)
    assert not {q.qid for q in questions} & {q.qid for q in load_questions()}
    for question in questions:
        for quote, spans in zip(question.evidence, evidence_spans(question, [article]), strict=True):
            assert spans, f"{question.qid}: {quote!r} not in the article"
            assert all(article.text[s.start : s.end] == quote for s in spans)


@pytest.mark.parametrize("entry", SUITE, ids=lambda e: e.name)
def test_every_suite_question_set_is_well_formed(entry: EvalCorpus) -> None:
    """Every set of the suite: unique ids, at least 40 answerable and 8 unanswerable questions
    (the sets written for the wider evaluation label at least half of these near-topic), and
    every evidence quote found in its corpus as citeqa reads it."""
    questions = load_questions(entry.questions)
    assert len({q.qid for q in questions}) == len(questions)
    assert sum(q.answerable for q in questions) >= 40
    unanswerable = [q for q in questions if not q.answerable]
    assert len(unanswerable) >= 8
    labelled = [q for q in unanswerable if q.topic]
    assert 2 * sum(q.topic == "near" for q in labelled) >= len(labelled)
    documents = load_corpus(entry.corpus)
    for question in questions:
        for quote, spans in zip(question.evidence, evidence_spans(question, documents), strict=True):
            assert spans, f"{question.qid}: {quote!r} not in {entry.name}"


def test_a_topic_is_for_unanswerable_questions_only(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "q?", "type": "factual", "evidence": ["x"], "topic": "near"}\n')
    with pytest.raises(CiteqaError, match="topic"):
        load_questions(path)
    path.write_text('{"id": "a", "question": "q?", "type": "off_topic", "evidence": [], "topic": "nearby"}\n')
    with pytest.raises(CiteqaError, match="topic"):
        load_questions(path)
    path.write_text('{"id": "a", "question": "q?", "type": "off_topic", "evidence": [], "topic": "near"}\n')
    assert load_questions(path)[0].topic == "near"
