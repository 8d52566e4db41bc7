"""One question asked of the served index, shared by every way in: `/ask` and its stream, the
OpenAI-compatible chat API and the MCP tools. A search runs through the app's gate (its limits
on searches in flight and its timeout); the passages come back as the API shows them."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import FastAPI, HTTPException

from ingest.documents import Document
from service.display import Displays
from service.generations import generation_of
from service.guards import SearchGate
from service.retriever import Answer, Filters, Hit, Retriever

log = logging.getLogger("citeqa")
# Server-sent events reach the client as they are written: no cache, no proxy buffering.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class Asked:
    """A question, the retriever's answer to it and its passages as the API shows them."""

    question: str
    mode: str
    answer: Answer
    passages: list[dict[str, Any]]
    generation: int
    retriever: Retriever
    started: float = field(default_factory=time.perf_counter)

    def took_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 2)

    def body(self) -> dict[str, Any]:
        """What `/ask` answers (without a written answer)."""
        return {
            "question": self.question,
            "mode": self.mode,
            "took_ms": self.took_ms(),
            "answerable": self.answer.answerable,
            "no_answer_reason": self.answer.reason,
            "passages": self.passages,
            "generation": self.generation,
        }


def ready(app: FastAPI) -> Retriever:
    retriever: Retriever | None = app.state.retriever
    if retriever is None:
        raise HTTPException(status_code=503, detail="index is not loaded yet", headers={"Retry-After": "1"})
    return retriever


async def search(
    app: FastAPI,
    question: str,
    k: int = 5,
    mode: str = "hybrid",
    filters: Filters | None = None,
    retriever: Retriever | None = None,
    count: bool = True,
) -> Asked:
    """The retriever's answer through the app's gate: Overloaded or TimedOut when it is full or
    slow (the app answers those 503 and 504). One retriever snapshot answers throughout. With
    `count` false the caller counts the answer it keeps (`count_answer`): one per request."""
    started = time.perf_counter()
    retriever = retriever or ready(app)
    gate: SearchGate = app.state.gate
    answer = await gate.run(lambda: retriever.answer(question, k, mode, filters=filters))
    passages = [passage_dict(h, app.state.displays) for h in answer.hits]
    if count:
        count_answer(app, answer.answerable)
    return Asked(question, mode, answer, passages, generation_of(retriever.index.manifest), retriever, started)


def count_answer(app: FastAPI, answerable: bool) -> None:
    app.state.metrics.answers.labels(str(answerable).lower()).inc()


def passage_dict(hit: Hit, displays: Displays | None = None) -> dict[str, Any]:
    chunk, document = hit.chunk, hit.document
    pages = document.page_span(chunk.start, chunk.end)
    answer = None
    if hit.answer is not None:
        answer_pages = document.page_span(hit.answer.start, hit.answer.end)
        answer = {
            "text": document.text[hit.answer.start : hit.answer.end],
            "start": hit.answer.start,
            "end": hit.answer.end,
            "page": answer_pages[0] if answer_pages else None,
            "highlighted": hit.highlighted,
            "confidence": None if hit.answer_confidence is None else round(hit.answer_confidence, 4),
        }
    return {
        "rank": hit.rank,
        "score": round(hit.score, 4),
        "chunk_id": chunk.chunk_id,
        "text": chunk.text,
        "answer": answer,
        "display": passage_display(displays, document, chunk.start, chunk.end),
        "citation": {
            "doc_id": chunk.doc_id,
            "title": document.title,
            "source": document.source,
            "format": document.format,
            "section": chunk.section,
            "speaker": chunk.speaker,
            "start": chunk.start,
            "end": chunk.end,
            "page": pages[0] if pages else None,
            "pages": list(pages) if pages else None,
            "also_in": [asdict(source) for source in hit.also_in],
        },
    }


def passage_display(displays: Displays | None, document: Document, start: int, end: int) -> list[dict[str, Any]] | None:
    """The passage's formatted blocks, or None (the page then shows its plain text): a document
    the formatter cannot read costs its formatting, never the answer."""
    if displays is None:
        return None
    try:
        return displays.passage(document, start, end)
    except Exception:  # any formatter failure falls back to the plain text
        log.exception("cannot format a passage of %s; showing its plain text", document.doc_id)
        return None
