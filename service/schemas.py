"""Pydantic models at the HTTP edge: what /ask accepts and what it answers."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator

Question = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=1000)]
# What `printable_text` enforces, stated in the schema so that clients and fuzzers know it:
# no control characters but tab/newline, no lone surrogates, something besides whitespace.
_ALLOWED = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]"
QUESTION_PATTERN = rf"^{_ALLOWED}*[^\s\x00-\x1f\x7f-\x9f\ud800-\udfff]{_ALLOWED}*$"
Mode = Literal["hybrid", "dense", "lexical"]


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

    @field_validator("question")
    @classmethod
    def printable_text(cls, value: str) -> str:
        for ch in value:
            if 0xD800 <= ord(ch) <= 0xDFFF:
                raise ValueError("question contains an unpaired surrogate code point")
            if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r":
                raise ValueError(f"question contains a control character (U+{ord(ch):04X})")
        return value


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
    section: str | None
    speaker: str | None
    start: int = Field(description="Offset of the passage in the document's text (code points).")
    end: int
    also_in: list[OtherSource] = Field(default_factory=list, description="Other documents with the same text.")


class AnswerSpan(BaseModel):
    text: str
    start: int = Field(description="Offset of the answer sentence in the document's text.")
    end: int


class Passage(BaseModel):
    rank: int
    score: float
    chunk_id: str
    text: str
    answer: AnswerSpan | None = Field(description="The sentence of the passage that best answers the question.")
    citation: Citation


class AskResponse(BaseModel):
    question: str
    mode: str
    took_ms: float
    answerable: bool = Field(description="False when nothing in the corpus looks relevant enough.")
    passages: list[Passage]


class DocumentResponse(BaseModel):
    doc_id: str
    title: str
    source: str
    text: str


class Problem(BaseModel):
    detail: str | list[dict[str, object]]
