"""The hand-written question set and what counts as a relevant passage."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ingest.documents import Document
from ingest.errors import CiteqaError

DEFAULT_QUESTIONS = Path(__file__).resolve().parent / "questions.jsonl"
QUESTION_TYPES = {"factual", "paraphrase", "expert", "continued", "off_topic"}
# An unanswerable question is "near" when it is on the corpus's own subject (a fact it never
# states), "unrelated" when it is about something else; older sets leave it unlabelled.
TOPICS = {"near", "unrelated"}


@dataclass(frozen=True)
class Span:
    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    kind: str
    evidence: tuple[str, ...]
    speaker: str | None = None
    topic: str | None = None  # unanswerable questions only: "near" or "unrelated"

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)


def load_questions(path: Path = DEFAULT_QUESTIONS) -> list[Question]:
    questions = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CiteqaError(f"cannot read questions: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question = Question(
                row["id"], row["question"], row["type"], tuple(row["evidence"]), row.get("speaker"), row.get("topic")
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CiteqaError(f"{path}:{number}: malformed question ({exc})") from exc
        if question.kind not in QUESTION_TYPES:
            raise CiteqaError(f"{path}:{number}: unknown type '{question.kind}'")
        if question.topic is not None and (question.topic not in TOPICS or question.answerable):
            raise CiteqaError(f"{path}:{number}: 'topic' is 'near' or 'unrelated', for unanswerable questions only")
        questions.append(question)
    return questions


def _word_pattern(word: str) -> str:
    """A word of a quote, each punctuation mark in it with or without the backslash that escapes
    it in Markdown ("GIT\\_DIR" as one HTML reader writes it, "GIT_DIR" as another does)."""
    word = re.sub(r"\\(?=[^0-9A-Za-z\s])", "", word)
    return "".join(rf"\\?{re.escape(ch)}" if not ch.isalnum() else re.escape(ch) for ch in word)


def quote_pattern(quote: str) -> re.Pattern[str]:
    """The quote's words in order, any run of whitespace between them (a hard-wrapped line or a
    PDF's line break matches a space, and so does a line break in a Markdown quotation with the
    '>' marks that open its next line), and Markdown's escapes optional."""
    return re.compile(r"\s+(?:>+\s+)*".join(_word_pattern(word) for word in quote.split()))


def evidence_spans(question: Question, documents: list[Document]) -> list[list[Span]]:
    """For each evidence quote, every place it occurs in the corpus (ground truth only: the
    service's own offsets are never found by searching)."""
    result = []
    for quote in question.evidence:
        pattern = quote_pattern(quote)
        result.append([Span(d.doc_id, m.start(), m.end()) for d in documents for m in pattern.finditer(d.text)])
    return result


def covers_half(span: Span, evidence: Span) -> bool:
    """A passage (or answer) is relevant when it covers at least half of an evidence span."""
    if span.doc_id != evidence.doc_id:
        return False
    covered = min(span.end, evidence.end) - max(span.start, evidence.start)
    return covered * 2 >= evidence.end - evidence.start


def is_relevant(span: Span, evidence: list[list[Span]]) -> bool:
    return any(covers_half(span, e) for spans in evidence for e in spans)
