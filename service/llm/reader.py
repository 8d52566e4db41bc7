"""The written answer: the top passages sent to an LLM under short ids ([1] is rank 1), its reply
cut into sentences, each checked against the passages it cites (`check`). Without an LLM, or
when it fails, the answer is the extractive one, with `fallback_reason` saying why.

A written answer (the `written` object of `/ask`, the stream's `answer` event, the chat API's
`citeqa` field) holds:
- `status`: "written" (at least one sentence supported), "unsupported" (none is), "declined"
  (the LLM said the passages do not answer) or "extractive" (no LLM answer: see
  `fallback_reason`);
- `answerable`, and `reason` when it is false;
- `text`: the reply as checked: each sentence with the markers of the passages that support it,
  an unsupported one followed by "[unsupported]"; `raw_text`: the reply as the LLM wrote it;
- `sentences`: each with `supported`, `score`, its `citations` (supporting spans that slice
  their documents exactly) and `rejected` (cited passages that do not support it);
- `dropped_markers`: markers that name no passage given to the LLM.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from service.asking import Asked
from service.llm.check import ClaimChecker, Support
from service.llm.client import ChatClient, LLMConfig, LLMFailure
from service.llm.markers import MarkerSafe, claims
from service.observability import Metrics
from service.retriever import Hit
from service.settings import Settings

NO_ANSWER = "NO ANSWER"
SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. Write a short answer. "
    "After every sentence, cite the passages that support it by their numbers in square brackets, "
    "like [1] or [2][3]. Use no knowledge beyond the passages. If the passages do not answer the "
    f"question, reply with exactly: {NO_ANSWER}"
)
HISTORY_TURNS = 6  # earlier messages of a conversation sent along for a follow-up
HISTORY_CHARS = 2000  # of each
_DECLINED = re.compile(r"\W*no answer\b", re.IGNORECASE)


def passages_prompt(question: str, hits: Sequence[Hit]) -> str:
    blocks = []
    for hit in hits:
        heading = " › ".join(part for part in (hit.document.title, hit.chunk.section) if part)
        blocks.append(f"[{hit.rank}] {heading}\n{hit.chunk.text.strip()}")
    return "Passages:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"


def messages(question: str, history: Sequence[dict[str, str]], hits: Sequence[Hit]) -> list[dict[str, str]]:
    earlier = [
        {"role": turn["role"], "content": turn["content"][:HISTORY_CHARS]}
        for turn in history[-HISTORY_TURNS:]
        if turn.get("role") in ("user", "assistant")
    ]
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        *earlier,
        {"role": "user", "content": passages_prompt(question, hits)},
    ]


def declines(text: str) -> bool:
    return bool(_DECLINED.match(text))


def citation_dict(support: Support) -> dict[str, Any]:
    document, chunk = support.hit.document, support.hit.chunk
    pages = document.page_span(support.start, support.end)
    return {
        "marker": support.marker,
        "rank": support.hit.rank,
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "title": document.title,
        "source": document.source,
        "section": chunk.section,
        "start": support.start,
        "end": support.end,
        "page": pages[0] if pages else None,
        "text": document.text[support.start : support.end],
        "score": support.score,
        "cosine": support.cosine,
        "coverage": support.coverage,
        "supported": support.supported,
    }


def _written(status: str, answerable: bool, reason: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "status": status,
        "answerable": answerable,
        "reason": reason,
        "fallback_reason": None,
        "model": None,
        "text": "",
        "raw_text": "",
        "sentences": [],
        "dropped_markers": [],
        **fields,
    }


def extractive(asked: Asked, fallback_reason: str) -> dict[str, Any]:
    """Today's answer as a written one: the rank-1 passage's answer sentence, cited."""
    hits = asked.answer.hits
    if not asked.answer.answerable or not hits or hits[0].answer is None:
        reason = asked.answer.reason or "no passage of the corpus answers the question"
        return _written("extractive", False, reason, fallback_reason=fallback_reason)
    hit, span = hits[0], hits[0].answer
    citation = citation_dict(Support(1, hit, span.start, span.end, 1.0, 1.0, 1.0, True))
    citation.update(score=None, cosine=None, coverage=None)
    sentence_text = hit.document.text[span.start : span.end].strip()
    text = f"{sentence_text} [1]"
    sentence = {
        "text": text,
        "start": 0,
        "end": len(text),
        "markers": [1],
        "supported": True,
        "score": None,
        "citations": [citation],
        "rejected": [],
        "reason": None,
    }
    return _written(
        "extractive", True, None, fallback_reason=fallback_reason, text=text, raw_text=text, sentences=[sentence]
    )


def checked(asked: Asked, reply: str, hits: Sequence[Hit], model: str | None) -> dict[str, Any]:
    """The LLM's reply, each sentence checked against the passages it cites."""
    if declines(reply):
        return _written(
            "declined", False, "the LLM said the passages do not answer the question", model=model, raw_text=reply
        )
    checker = ClaimChecker(asked.retriever)
    given = {hit.rank: hit for hit in hits}
    sentences: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    shown: list[str] = []
    for number, claim in enumerate(claims(reply)):
        cited: list[tuple[int, Hit]] = []
        for marker in claim.markers:
            hit = given.get(marker)
            if hit is None:
                dropped.append(
                    {"marker": marker, "sentence": number, "reason": f"no passage [{marker}] was given to the LLM"}
                )
            else:
                cited.append((marker, hit))
        supports = checker.supports(claim.plain, cited, list(hits)) if cited else []
        citations = [citation_dict(s) for s in supports if s.supported]
        rejected = [citation_dict(s) for s in supports if not s.supported]
        if citations:
            reason = None
        elif supports:
            reason = "no passage it cites supports it"
        elif claim.markers:
            reason = "it cites only passages that were not given"
        else:
            reason = "it cites no passage"
        sentences.append(
            {
                "text": reply[claim.start : claim.end],
                "start": claim.start,
                "end": claim.end,
                "markers": list(claim.markers),
                "supported": bool(citations),
                "score": max((s.score for s in supports), default=None),
                "citations": citations,
                "rejected": rejected,
                "reason": reason,
            }
        )
        marks = "".join(f"[{c['marker']}]" for c in citations)
        shown.append(f"{claim.plain} {marks}" if citations else f"{claim.plain} [unsupported]")
    supported = sum(s["supported"] for s in sentences)
    if supported:
        status, reason = "written", None
    else:
        status, reason = "unsupported", "no sentence of the LLM's answer is supported by the passages it cites"
    return _written(
        status,
        bool(supported),
        reason,
        model=model,
        text=" ".join(shown),
        raw_text=reply,
        sentences=sentences,
        dropped_markers=dropped,
    )


class Reader:
    """Writes answers with one OpenAI-compatible server, at most `max_running` at once: a written
    answer waits its turn up to the timeout, then is the extractive one ("the LLM is busy")."""

    def __init__(
        self,
        config: LLMConfig,
        passages: int = 5,
        client: ChatClient | None = None,
        max_running: int = 4,
        on_written: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.passages = passages
        self.client = client or ChatClient(config)
        self.max_running = max_running
        self._slots = asyncio.Semaphore(max_running)
        self._on_written = on_written

    async def aclose(self) -> None:
        await self.client.aclose()

    def _hits(self, asked: Asked) -> list[Hit]:
        return asked.answer.hits[: self.passages]

    def _done(self, written: dict[str, Any]) -> dict[str, Any]:
        if self._on_written is not None:
            self._on_written(written)
        return written

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(self._slots.acquire(), self.config.timeout_s)
        except TimeoutError as exc:
            busy = f"the LLM is busy ({self.max_running} written answers at once, none done within "
            raise LLMFailure(busy + f"{self.config.timeout_s:g} s)") from exc
        try:
            yield
        finally:
            self._slots.release()

    async def write(self, asked: Asked, history: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
        hits = self._hits(asked)
        if not hits:
            return self._done(_written("declined", False, "no passage of the corpus was found to answer from"))
        try:
            async with self._turn():
                reply = await self.client.complete(messages(asked.question, history, hits))
        except LLMFailure as failure:
            return self._done(extractive(asked, str(failure)))
        return self._done(await asyncio.to_thread(checked, asked, reply, hits, self.config.model or None))

    async def stream(
        self, asked: Asked, history: Sequence[dict[str, str]] = ()
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """("delta", {"text"}) as the reply comes, never ending inside a marker; then ("answer",
        the checked written answer). After a failure mid-stream the answer is the extractive one
        (`status` "extractive"): the text streamed until then is to be discarded."""
        hits = self._hits(asked)
        if not hits:
            yield "answer", self._done(_written("declined", False, "no passage of the corpus was found to answer from"))
            return
        safe, parts = MarkerSafe(), []
        try:
            async with self._turn():
                async for piece in self.client.stream(messages(asked.question, history, hits)):
                    parts.append(piece)
                    ready = safe.feed(piece)
                    if ready:
                        yield "delta", {"text": ready}
        except LLMFailure as failure:
            yield "answer", self._done(extractive(asked, str(failure)))
            return
        rest = safe.flush()
        if rest:
            yield "delta", {"text": rest}
        written = await asyncio.to_thread(checked, asked, "".join(parts), hits, self.config.model or None)
        yield "answer", self._done(written)


def reader_from_settings(settings: Settings, metrics: Metrics | None = None) -> Reader | None:
    """The Reader that the settings ask for (None without CITEQA_LLM_URL), counting its answers."""
    config = settings.llm_config()
    if config is None:
        return None

    def count(written: dict[str, Any]) -> None:
        if metrics is not None:
            metrics.written.labels(written["status"]).inc()

    return Reader(config, settings.llm_passages, max_running=settings.llm_max_running, on_written=count)


NO_LLM = "no LLM is configured (set CITEQA_LLM_URL)"


async def written_answer(reader: Reader | None, asked: Asked, history: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    if reader is None:
        return extractive(asked, NO_LLM)
    return await reader.write(asked, history)


async def written_stream(
    reader: Reader | None, asked: Asked, history: Sequence[dict[str, str]] = ()
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    if reader is None:
        yield "answer", extractive(asked, NO_LLM)
        return
    async for event in reader.stream(asked, history):
        yield event
