"""The question set is well formed: every evidence quote is an exact substring of the corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from eval.questions import Span, covers_half, evidence_spans, load_questions
from ingest.documents import Document


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
