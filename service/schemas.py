"""Pydantic models at the HTTP edge: what /ask accepts and what it answers."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from ingest.documents import DOC_ID_PATTERN
from service.retriever import Filters

Question = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=1000)]
# What `printable_text` enforces, stated in the schema so that clients and fuzzers know it:
# no control characters but tab/newline, no lone surrogates, something besides whitespace.
_ALLOWED = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"
QUESTION_PATTERN = rf"^{_ALLOWED}*[^\s\x00-\x1f\x7f-\x9f\ud800-\udfff]{_ALLOWED}*$"
Mode = Literal["hybrid", "dense", "lexical"]
DocId = Annotated[str, StringConstraints(strict=True, pattern=DOC_ID_PATTERN.pattern)]
Label = Annotated[
    str,
    StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=500),
    Field(json_schema_extra={"pattern": QUESTION_PATTERN}),
]


def _integral(value: object) -> object:
    """JSON does not tell 5 from 5.0, so an integral number is an integer; strings, booleans
    and fractions are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


Count = Annotated[int, BeforeValidator(_integral)]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question = Field(
        description="The question, 1–1000 characters after trimming; no control characters.",
        json_schema_extra={"pattern": QUESTION_PATTERN},
    )
    k: Count = Field(5, ge=1, le=50, description="How many passages to return.")
    mode: Mode = Field("hybrid", description="Retrieval mode: hybrid (default), dense or lexical.")
    doc_ids: list[DocId] | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Only passages of these documents (1–100 ids of GET /documents).",
    )
    section: Label | None = Field(
        None,
        description="Only passages whose section path starts with this, in any case; a section path is "
        "the headings above the passage joined with ' › ', e.g. 'Configuration › Build'.",
    )
    speaker: Label | None = Field(None, description="Only passages spoken by this person (exact name, any case).")
    written: bool = Field(
        False,
        description="Also a written answer (`written` in the response): by the configured LLM, every sentence "
        "checked against the passages it cites; the extractive answer when there is no LLM or it fails.",
    )

    @field_validator("question", "section", "speaker")
    @classmethod
    def printable_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        for ch in value or "":
            if 0xD800 <= ord(ch) <= 0xDFFF:
                raise ValueError(f"{info.field_name} contains an unpaired surrogate code point")
            if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r":
                raise ValueError(f"{info.field_name} contains a control character (U+{ord(ch):04X})")
        return value

    def filters(self) -> Filters | None:
        if self.doc_ids is None and self.section is None and self.speaker is None:
            return None
        doc_ids = frozenset(self.doc_ids) if self.doc_ids is not None else None
        return Filters(doc_ids, self.section, self.speaker)


class OtherSource(BaseModel):
    doc_id: str
    title: str
    source: str
    start: int
    end: int


class Citation(BaseModel):
    doc_id: str
    title: str
    source: str
    format: str | None = Field(None, description="The reader that extracted the text: text, markdown, html or pdf.")
    section: str | None
    speaker: str | None
    start: int = Field(description="Offset of the passage in the document's text (code points).")
    end: int
    page: int | None = Field(description="Page (1-based) where the passage starts; null for documents without pages.")
    pages: list[int] | None = Field(
        min_length=2, max_length=2, description="First and last page of the passage; null without pages."
    )
    also_in: list[OtherSource] = Field(default_factory=list, description="Other documents with the same text.")


class AnswerSpan(BaseModel):
    text: str
    start: int = Field(description="Offset of the answer sentence in the document's text.")
    end: int
    page: int | None = Field(description="Page (1-based) where the answer sentence starts; null without pages.")
    highlighted: bool = Field(
        description="True when the sentence is confident enough to highlight (the rank-1 passage of an answerable "
        "question, calibrated probability >= 0.71); otherwise the passage is shown without a highlight."
    )
    confidence: float | None = Field(
        description="The calibrated probability that the sentence covers the answer (rank 1 only; null elsewhere)."
    )


class DisplayRun(BaseModel):
    text: str = Field(description="Text to show as it is: never HTML.")
    start: int = Field(description="Where the run's source starts in the document's text.")
    end: int
    marks: list[Literal["code", "em", "strong", "link", "image"]] = Field(default_factory=list)
    exact: bool = Field(True, description="False when `text` is not the source verbatim (markup inside).")


class DisplayBlock(BaseModel):
    kind: Literal["paragraph", "heading", "item", "code", "label", "table"]
    runs: list[DisplayRun] = Field(default_factory=list)
    rows: list[list[list[DisplayRun]]] = Field(default_factory=list, description="A table's cells of runs.")
    head: int = Field(0, description="How many of a table's rows are its header.")
    depth: int = Field(0, description="List and quotation nesting.")
    marker: str = Field("", description="A list item's bullet or number.")
    level: int = Field(0, description="A heading's level.")


class Passage(BaseModel):
    rank: int
    score: float
    chunk_id: str
    text: str
    answer: AnswerSpan | None = Field(description="The sentence of the passage that best answers the question.")
    display: list[DisplayBlock] | None = Field(
        None, description="The passage as formatted text (Markdown read), each run with its source offsets."
    )
    citation: Citation


class WrittenCitation(BaseModel):
    marker: int = Field(description="The marker's number: the passage of that rank.")
    rank: int
    chunk_id: str
    doc_id: str
    title: str
    source: str
    section: str | None
    start: int = Field(description="The supporting span's offset in the document's text (code points).")
    end: int
    page: int | None
    text: str = Field(description="The supporting span: the document's text[start:end].")
    score: float | None = Field(description="How well the span supports the sentence (null for the extractive one).")
    cosine: float | None
    coverage: float | None = Field(description="Share of the sentence's content words (idf-weighted) in the span.")
    supported: bool


class WrittenSentence(BaseModel):
    text: str = Field(description="The sentence as the LLM wrote it, markers included.")
    start: int = Field(description="Its offset in `raw_text`.")
    end: int
    markers: list[int]
    supported: bool = Field(description="True when a passage it cites supports it; never shown as cited otherwise.")
    score: float | None
    citations: list[WrittenCitation] = Field(description="The cited passages that support it, with their spans.")
    rejected: list[WrittenCitation] = Field(description="The cited passages that do not support it.")
    reason: str | None = Field(description="Why it is unsupported.")


class DroppedMarker(BaseModel):
    marker: int
    sentence: int = Field(description="Index of the sentence in `sentences`.")
    reason: str


class WrittenAnswer(BaseModel):
    status: Literal["written", "unsupported", "declined", "extractive"]
    answerable: bool
    reason: str | None = Field(description="Why there is no answer, when `answerable` is false.")
    fallback_reason: str | None = Field(description="Why the answer is extractive: no LLM, or how it failed.")
    model: str | None
    text: str = Field(description="The answer as checked: supported sentences with their markers, others marked.")
    raw_text: str = Field(description="The answer as the LLM wrote it.")
    sentences: list[WrittenSentence]
    dropped_markers: list[DroppedMarker] = Field(description="Markers naming no passage given to the LLM.")
    took_ms: float | None = None


class AskResponse(BaseModel):
    question: str
    mode: str
    took_ms: float
    answerable: bool = Field(description="False when nothing in the corpus looks relevant enough.")
    no_answer_reason: str | None = Field(
        default=None, description="Why nothing answers (the words the documents never use, or how far the closest is)."
    )
    passages: list[Passage]
    generation: int = Field(description="The index generation that answered; one per response, never mixed.")
    written: WrittenAnswer | None = Field(None, description="The written answer, when the request asked for one.")


class DocumentResponse(BaseModel):
    doc_id: str
    title: str
    source: str
    format: str = Field(description="The reader that extracted the text: text, markdown, html or pdf.")
    pages: list[int] | None = Field(
        description="Offset where each page starts in `text` (page n runs from pages[n-1] to pages[n]); "
        "null for formats without pages."
    )
    text: str


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    source: str
    format: str
    characters: int = Field(description="Length of the document's text in code points.")
    pages: int | None = Field(description="Number of pages; null for formats without pages.")
    sha256: str = Field(description="sha256 of the document's text, as indexed.")
    generation: int = Field(description="The index generation in which this content was indexed.")


class DocumentList(BaseModel):
    total: int = Field(description="Documents in the corpus.")
    generation: int = Field(description="The index generation these documents are listed from.")
    offset: int
    limit: int
    documents: list[DocumentSummary] = Field(description="In corpus order (by source path).")


class Problem(BaseModel):
    detail: str | list[dict[str, object]]
