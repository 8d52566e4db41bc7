"""An OpenAI-compatible chat API over the same search and written answer as `/ask`, so that the
official `openai` client, Open WebUI and other chat front ends can talk to citeqa as to a model.

- `GET /v1/models` lists one model, `citeqa`.
- `POST /v1/chat/completions` answers the last user message (streamed or not); citeqa's own
  options (`k`, `mode`, `doc_ids`, `section`, `speaker`) are top-level body fields (the `openai`
  client's `extra_body` puts them there); the citations travel in a top-level `citeqa` field.

Errors are OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, never a 500 for a
bad request. docs/chat-api.md describes every field.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import quote
from uuid import uuid4

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.asking import SSE_HEADERS, Asked, count_answer, ready, search
from service.guards import Overloaded, TimedOut, check_api_key
from service.llm.reader import written_answer, written_stream
from service.retriever import Retriever
from service.schemas import AskRequest, Count, DocId, Label, Mode, Problem

log = logging.getLogger("citeqa")

MODEL_ID = "citeqa"
STARTED = int(time.time())  # the model's `created`: when this process started
QUERY_CHARS = 1000  # of the earlier question joined to a follow-up for retrieval
# After text the LLM streamed, what the user can trust is shown below a rule (docs/chat-api.md).
FALLBACK_SEPARATOR = (
    "\n\n---\n\n**The written answer failed ({reason}); disregard the text above. The answer from the passages:**\n\n"
)
CHECKED_SEPARATOR = (
    "\n\n---\n\n**Checked against the passages** (a sentence that no passage it cites supports is "
    "marked as unsupported):\n\n"
)


class OpenAIErrorBody(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, or server_error for 503 and 504.")
    param: str | None = Field(description="The body field at fault, e.g. `messages` or `k`.")
    code: str | None


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


# 413 and 415 come from the body guard before any route, in `/ask`'s shape. "4XX" keeps FastAPI
# from documenting a 422 that these routes never answer (a bad body is a 400, as OpenAI's).
ERRORS: dict[int | str, dict[str, Any]] = {
    **{code: {"model": OpenAIError} for code in (400, 401, 503, 504)},
    **{code: {"model": Problem} for code in (413, 415)},
    "4XX": {"model": OpenAIError, "description": "Another client error, in OpenAI's shape."},
}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(description="user, assistant, system, developer or tool; only user and assistant are read.")
    content: str | list[ContentPart] | None = Field(None, description="Text, or parts of which the text ones are read.")

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if part.type == "text" and part.text)


class ChatRequest(BaseModel):
    """OpenAI's chat completion request; fields it has that do not apply here (temperature,
    max_tokens, top_p, user, stream_options, ...) and unknown ones are accepted and ignored."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": MODEL_ID, "messages": [{"role": "user", "content": "Who founded the city?"}], "k": 5}
            ]
        },
    )

    model: str = Field(MODEL_ID, description="Any name is answered by citeqa; `citeqa` is the one listed.")
    messages: list[ChatMessage] = Field(description="The last user message is the question; earlier ones the history.")
    stream: bool | None = Field(False, description="Server-sent `chat.completion.chunk`s, then `data: [DONE]`.")
    n: int | None = Field(None, description="Only 1 is supported.")
    k: Count = Field(5, ge=1, le=50, description="citeqa: how many passages to retrieve.")
    mode: Mode = Field("hybrid", description="citeqa: retrieval mode, hybrid (default), dense or lexical.")
    doc_ids: list[DocId] | None = Field(
        None, min_length=1, max_length=100, description="citeqa: only passages of these documents."
    )
    section: Label | None = Field(None, description="citeqa: only passages whose section path starts with this.")
    speaker: Label | None = Field(None, description="citeqa: only passages spoken by this person.")


class RequestProblem(Exception):
    """A request refused with OpenAI's error shape."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(status_code=status, content=body, headers=dict(headers) if headers else None)


def _param(loc: Sequence[Any]) -> str | None:
    parts = [p for p in loc if p != "body"]
    if not parts:
        return None
    name = str(parts[0])
    for part in parts[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def _validation_response(errors: Sequence[Any]) -> JSONResponse:
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "the request body is not valid JSON", code="invalid_json")
    first = errors[0]
    param = _param(first.get("loc", ()))
    if first.get("type") == "missing" and param is None:
        return error_response(400, "the request body is missing", code="missing_body")
    # The message only: echoing the input back could hold unencodable text (a lone surrogate).
    message = f"{param}: {first.get('msg', 'invalid')}" if param else str(first.get("msg", "invalid"))
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return error_response(400, message, param, str(first.get("type", "invalid_value")))


def _http_response(exc: HTTPException) -> JSONResponse:
    codes = {401: "invalid_api_key", 404: "not_found", 503: "not_ready"}
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, detail, code=codes.get(exc.status_code), headers=exc.headers)


class OpenAIRoute(APIRoute):
    """Every refusal of these routes in OpenAI's error shape: a bad body, a missing key, an index
    not loaded yet, a full server, a slow search."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_response(exc.errors())
            except RequestProblem as exc:
                return error_response(exc.status, exc.message, exc.param, exc.code)
            except HTTPException as exc:
                return _http_response(exc)
            except Overloaded:
                message = "too many requests in flight; retry shortly"
                return error_response(503, message, code="overloaded", headers={"Retry-After": "1"})
            except TimedOut:
                timeout = request.app.state.settings.request_timeout_s
                return error_response(504, f"the search took longer than {timeout:g}s", code="timeout")

        return guarded


async def authorised(request: Request) -> None:
    """The key of `/ask`: the openai client sends it as `Authorization: Bearer <key>`."""
    key = request.app.state.settings.api_key
    check_api_key(request, key.get_secret_value() if key else None)


async def ready_retriever(request: Request) -> Retriever:
    return ready(request.app)


router = APIRouter(
    prefix="/v1",
    tags=["chat (OpenAI-compatible)"],
    route_class=OpenAIRoute,
    responses={401: {"model": OpenAIError}},
    dependencies=[Depends(authorised)],  # before the body is read: a wrong key is a 401, whatever the body
)


@router.get("/models")
async def models() -> dict[str, Any]:
    """The OpenAI model list: one model, `citeqa`. A chat completion naming any other model is
    answered by citeqa all the same."""
    model = {"id": MODEL_ID, "object": "model", "created": STARTED, "owned_by": "citeqa"}
    return {"object": "list", "data": [model]}


@router.post(
    "/chat/completions",
    responses={
        **ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "With `stream`: chat.completion.chunks."},
    },
)
async def chat_completions(
    body: ChatRequest, request: Request, retriever: Annotated[Retriever, Depends(ready_retriever)]
) -> Response:
    """A chat completion whose content is citeqa's answer: the written answer's checked text
    (each sentence with its `[n]` markers, `[n]` being the passage of rank n; a sentence no
    passage supports followed by "[unsupported]"), or the extractive answer without an LLM.

    The last user message is the question and earlier user and assistant messages the history
    sent to the LLM. When the last message alone finds nothing answerable and there is an
    earlier user message, the two joined are searched instead (a follow-up such as "Who
    else?"). System messages are not read.

    The completion (and the last chunk of a stream) has a top-level `citeqa` field:
    `passages` (as `/ask` returns them), `written` (the written answer, as `written` of `/ask`:
    status, sentences and their citations with exact spans), `answerable`, `no_answer_reason`,
    `query` (what was searched), `generation`, `took_ms`. A non-streamed completion also has
    `sources`, and a stream sends one chunk per passage with an `event` of type `source`: the
    shapes Open WebUI shows as citations.

    Streamed, the LLM's text comes as content deltas as it writes them. When it fails midway,
    the extractive answer follows below a rule ("The written answer failed (...); disregard the
    text above"); when the check finds a sentence unsupported or a marker naming no passage,
    the checked text follows below a rule ("Checked against the passages"). `usage` counts are
    estimates (four characters a token)."""
    question, history = _conversation(body)
    if body.n not in (None, 1):
        raise RequestProblem(400, "only n=1 is supported", "n", "unsupported_value")
    options = {"k": body.k, "mode": body.mode, "doc_ids": body.doc_ids, "section": body.section}
    try:
        ask = AskRequest.model_validate({"question": question, "speaker": body.speaker, **options})
    except ValidationError as exc:
        raise _question_problem(exc) from None
    unknown = retriever.unknown_documents(ask.doc_ids or ())
    if unknown:
        raise RequestProblem(400, f"unknown document id '{unknown[0]}' (GET /documents lists them)", "doc_ids")
    request.state.citeqa = {"mode": ask.mode, "k": ask.k, "stream": bool(body.stream), "api": "openai"}
    asked, query = await _search(request.app, ask, history, retriever)
    request.state.citeqa.update(answerable=asked.answer.answerable, passages=len(asked.passages))
    reader = request.app.state.reader
    reply = Reply(asked, query, _estimate(sum(len(m.text()) for m in body.messages)))
    sources = [openwebui_source(p, str(request.base_url)) for p in asked.passages]
    if body.stream:
        return StreamingResponse(
            reply.chunks(written_stream(reader, asked, history), sources),
            media_type="text/event-stream",
            headers=SSE_HEADERS,
        )
    written = await written_answer(reader, asked, history)
    return Response(orjson.dumps(reply.completion(written, sources)), media_type="application/json")


def _conversation(body: ChatRequest) -> tuple[str, list[dict[str, str]]]:
    """The last user message and the user and assistant turns before it."""
    if not body.messages:
        raise RequestProblem(400, "messages is empty: send at least one user message", "messages", "empty_messages")
    last = max((i for i, m in enumerate(body.messages) if m.role == "user"), default=None)
    if last is None:
        raise RequestProblem(400, "messages holds no user message: the question is one", "messages", "no_user_message")
    history = [
        {"role": m.role, "content": _printable(m.text())}
        for m in body.messages[:last]
        if m.role in ("user", "assistant") and m.text().strip()
    ]
    return body.messages[last].text(), history


def _printable(text: str) -> str:
    """Earlier turns go to the LLM and into a search unchecked: a lone surrogate, which no
    encoder takes, becomes U+FFFD. (The question itself is checked as `/ask` checks it.)"""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _question_problem(exc: ValidationError) -> RequestProblem:
    first = exc.errors()[0]
    loc = first.get("loc", ())
    field = str(loc[0]) if loc else None
    if field == "question":
        return RequestProblem(400, f"the last user message: {first.get('msg')}", "messages", "invalid_question")
    return RequestProblem(400, f"{field}: {first.get('msg')}", field, str(first.get("type")))


async def _search(
    app: FastAPI, ask: AskRequest, history: list[dict[str, str]], retriever: Retriever
) -> tuple[Asked, str]:
    """The last message's answer; for a follow-up that finds nothing answerable alone, the
    earlier user message and it joined, if that is answerable. The question the reader gets
    stays the last message (with the history). One answer counted, the one kept."""
    asked, query = await _search_with_history(app, ask, history, retriever)
    count_answer(app, asked.answer.answerable)
    return asked, query


async def _search_with_history(
    app: FastAPI, ask: AskRequest, history: list[dict[str, str]], retriever: Retriever
) -> tuple[Asked, str]:
    filters = ask.filters()
    asked = await search(app, ask.question, ask.k, ask.mode, filters, retriever, count=False)
    earlier = [turn["content"] for turn in history if turn["role"] == "user"]
    if asked.answer.answerable or not earlier:
        return asked, ask.question
    query = f"{' '.join(earlier[-1].split())[:QUERY_CHARS]} {ask.question}"
    again = await search(app, query, ask.k, ask.mode, filters, retriever, count=False)
    if not again.answer.answerable:
        return asked, ask.question
    again.question, again.started = ask.question, asked.started
    return again, query


def openwebui_source(passage: dict[str, Any], base_url: str) -> dict[str, Any]:
    """One passage as an Open WebUI source. Verified against open-webui/open-webui:
    backend/open_webui/utils/middleware.py (`stream_body_handler` passes a chunk's top-level
    `event` to the event emitter; a non-streamed reply goes to the page whole, as a
    `chat:completion` event), backend/open_webui/socket/main.py (an event of type `source`
    appends its `data` to the message's sources), src/lib/components/chat/Chat.svelte (`source`
    events and a `chat:completion`'s `sources`) and src/lib/components/chat/Messages/Citations.svelte
    and Citations/CitationModal.svelte: a source is `{"source": {"name", ...}, "document":
    [text], "metadata": [{"source": id, "name", "page" (0-based), "source_url"}]}`, sources are
    numbered in order by distinct `metadata.source`, and an `[n]` in the text opens the n-th.
    So every passage gets its own id, in rank order, and `[n]` opens the passage of rank n."""
    citation = passage["citation"]
    name = " › ".join(part for part in (citation["title"], citation["section"]) if part)
    view = f"{base_url}view/{quote(citation['doc_id'], safe='')}?start={citation['start']}&end={citation['end']}"
    answer = passage.get("answer")
    if answer:
        view += f"&astart={answer['start']}&aend={answer['end']}"
    metadata: dict[str, Any] = {
        "source": f"{citation['doc_id']}:{citation['start']}-{citation['end']}",
        "name": name,
        "source_url": view,
        "rank": passage["rank"],
        "doc_id": citation["doc_id"],
        "start": citation["start"],
        "end": citation["end"],
    }
    if citation["page"] is not None:
        metadata["page"] = citation["page"] - 1  # Open WebUI shows page + 1
    return {
        "source": {"id": metadata["source"], "name": name, "url": view},
        "document": [passage["text"]],
        "metadata": [metadata],
    }


def _estimate(characters: int) -> int:
    return math.ceil(characters / 4)


def reply_text(written: dict[str, Any], asked: Asked) -> str:
    """The written answer's checked text, or why there is none."""
    if written["text"]:
        return str(written["text"])
    reason = written.get("reason") or asked.answer.reason or "no passage of the corpus answers the question"
    return f"No answer: {reason}"


def closing_text(written: dict[str, Any], asked: Asked, streamed: str) -> str:
    """What a stream adds after the LLM's own text: the whole reply when nothing was streamed;
    after an LLM failure the extractive answer; after unsupported sentences or markers naming
    no passage, the checked text."""
    if not streamed.strip():
        return reply_text(written, asked)
    if written["status"] == "extractive":
        return FALLBACK_SEPARATOR.format(reason=written["fallback_reason"]) + reply_text(written, asked)
    if written["status"] in ("written", "unsupported") and (
        written["dropped_markers"] or not all(s["supported"] for s in written["sentences"])
    ):
        return CHECKED_SEPARATOR + str(written["text"])
    return ""


class Reply:
    """One chat completion's identity and its citeqa field, streamed or not."""

    def __init__(self, asked: Asked, query: str, prompt_tokens: int) -> None:
        self.asked, self.query, self.prompt_tokens = asked, query, prompt_tokens
        self.id = f"chatcmpl-{uuid4().hex}"
        self.created = int(time.time())

    def citeqa(self, written: dict[str, Any]) -> dict[str, Any]:
        answer = self.asked.answer
        return {
            "passages": self.asked.passages,
            "written": written,
            "answerable": answer.answerable,
            "no_answer_reason": answer.reason,
            "query": self.query,
            "generation": self.asked.generation,
            "took_ms": self.asked.took_ms(),
        }

    def usage(self, content: str) -> dict[str, int]:
        completion = _estimate(len(content))
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": MODEL_ID}

    def completion(self, written: dict[str, Any], sources: list[dict[str, Any]]) -> dict[str, Any]:
        content = reply_text(written, self.asked)
        message = {"role": "assistant", "content": content}
        return {
            **self._head("chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            "usage": self.usage(content),
            "sources": sources,
            "citeqa": self.citeqa(written),
        }

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({**self._head("chat.completion.chunk"), "choices": choices, **extra}) + b"\n\n"

    def _delta(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return self._chunk([{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra)

    async def chunks(
        self, events: AsyncIterator[tuple[str, dict[str, Any]]], sources: list[dict[str, Any]]
    ) -> AsyncIterator[bytes]:
        """The role, one Open WebUI source event per passage (no choices, as OpenAI's own usage
        chunk), the LLM's text as it comes, what `closing_text` adds, the last chunk with
        `finish_reason`, `usage` and `citeqa`, then `[DONE]`."""
        yield self._delta({"role": "assistant", "content": ""})
        for source in sources:
            yield self._chunk([], event={"type": "source", "data": source})
        streamed: list[str] = []
        try:
            written: dict[str, Any] | None = None
            async for kind, data in events:
                if kind == "delta":
                    streamed.append(data["text"])
                    yield self._delta({"content": data["text"]})
                else:
                    written = data
            if written is None:
                raise RuntimeError("the reader's stream ended without its answer")
            closing = closing_text(written, self.asked, "".join(streamed))
            if closing:
                yield self._delta({"content": closing})
            content = "".join(streamed) + closing
            yield self._delta({}, "stop", usage=self.usage(content), citeqa=self.citeqa(written))
        except Exception:  # the status line is sent: say so in the stream, as OpenAI does
            log.exception("the chat completion stream failed")
            error = {"message": "the answer failed; see the server's log", "type": "server_error", "param": None}
            yield b"data: " + orjson.dumps({"error": {**error, "code": None}}) + b"\n\n"
        yield b"data: [DONE]\n\n"
