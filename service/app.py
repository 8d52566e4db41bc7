"""The FastAPI application: thin routes over one Retriever loaded at start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from itertools import islice
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest.documents import Document
from ingest.errors import CiteqaError
from service.asking import SSE_HEADERS, passage_dict, search
from service.display import Displays
from service.documents_api import live_index
from service.documents_api import router as documents_router
from service.generations import generation_of
from service.guards import BodyGuard, Overloaded, SearchGate, TimedOut, check_api_key
from service.llm.reader import reader_from_settings, written_answer, written_stream
from service.observability import Metrics, RequestTelemetry
from service.openai_api import router as openai_router
from service.retriever import Retriever, open_retriever
from service.schemas import (
    AskRequest,
    AskResponse,
    DocumentList,
    DocumentResponse,
    DocumentSummary,
    Problem,
)
from service.settings import Settings, get_settings
from service.web import router as web_router

log = logging.getLogger("citeqa")

RetrieverLoader = Callable[[Settings], Retriever]
MCP_PATH = "/mcp"
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 413, 415, 422, 503, 504)
}
DOCUMENT_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 422, 503)}


def load_from_settings(settings: Settings) -> Retriever:
    import faiss

    # Searches already run in parallel worker threads: FAISS's own OpenMP threads on top would
    # oversubscribe two cores (measured in `citeqa bench`).
    faiss.omp_set_num_threads(1)
    return open_retriever(
        settings.index_dir,
        settings.serving_model_path(),
        settings.model_sha256,
        settings.encoder_threads,
        batch_queries=True,
        batch_encoder_threads=settings.batch_encoder_threads,
        verified_manifest_sha256=settings.verified_manifest_sha256,
    )


def _validation_problem(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(status_code=400, content={"detail": "the request body is not valid JSON"})
    # Echoing the input back could hold unencodable text (a lone surrogate): leave it out.
    cleaned = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors
    ]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(cleaned)})


# Dependencies are `async def`: a plain `def` would be run in a worker thread on every request.
async def ready_retriever(request: Request) -> Retriever:
    retriever: Retriever | None = request.app.state.retriever
    if retriever is None:
        raise HTTPException(status_code=503, detail="index is not loaded yet", headers={"Retry-After": "1"})
    return retriever


async def authorised(request: Request) -> None:
    key = request.app.state.settings.api_key
    check_api_key(request, key.get_secret_value() if key else None)


ReadyRetriever = Annotated[Retriever, Depends(ready_retriever)]
Authorised = Depends(authorised)


def create_app(
    settings: Settings | None = None,
    loader: RetrieverLoader = load_from_settings,
    on_load_failure: Callable[[str], None] | None = None,
) -> FastAPI:
    settings = settings or get_settings()

    async def load(app: FastAPI) -> None:
        try:
            retriever = await asyncio.to_thread(loader, settings)
            await warm(app, retriever)
            app.state.metrics.describe_index(retriever.index.manifest)
            app.state.retriever = retriever
            log.info("index loaded from %s", settings.index_dir)
        except Exception as exc:  # reported on /readyz and to whoever started us
            message = str(exc) if isinstance(exc, CiteqaError) else f"{type(exc).__name__}: {exc}"
            app.state.load_error = message
            log.error("index failed to load: %s", message)
            if on_load_failure:
                on_load_failure(message)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.retriever = None
        app.state.load_error = None
        app.state.gate = SearchGate(settings.max_running, settings.max_waiting, settings.request_timeout_s)
        app.state.metrics.in_flight.set_function(lambda: app.state.gate.admitted)
        app.state.reader = reader_from_settings(settings, app.state.metrics)
        task = asyncio.create_task(load(app))
        # A mounted app's own lifespan never runs: the MCP session manager runs inside this one.
        async with live_index(app, settings, lambda: loader(settings)), mcp_http.running():
            yield
        task.cancel()
        app.state.gate.close()
        if app.state.reader is not None:
            await app.state.reader.aclose()

    app = FastAPI(
        title="citeqa",
        summary="Answers questions with passages and exact, checkable citations.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.displays = Displays()
    # Added innermost first: telemetry wraps everything, so 413/415 answers are counted too.
    app.add_middleware(
        BodyGuard,
        max_bytes=settings.max_body_bytes,
        upload_prefix="/documents/",
        upload_max_bytes=settings.max_document_bytes,
        path_max_bytes={"/v1/chat/completions": settings.max_chat_body_bytes},
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["*"],
        )
    app.add_middleware(RequestTelemetry, metrics=app.state.metrics)
    app.include_router(web_router)
    app.include_router(documents_router)
    app.include_router(openai_router)
    # MCP over Streamable HTTP at /mcp: the same tools as `citeqa mcp`, the same key as /ask.
    from service.mcp_server import McpHttp  # imported here: service.mcp_server builds on this module

    mcp_http = McpHttp(app, MCP_PATH)
    app.router.routes.append(mcp_http.route)

    @app.exception_handler(RequestValidationError)
    async def validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_problem(exc)

    @app.exception_handler(Overloaded)
    async def overloaded_handler(request: Request, exc: Overloaded) -> JSONResponse:
        detail = "too many requests in flight; retry shortly"
        return JSONResponse(status_code=503, content={"detail": detail}, headers={"Retry-After": "1"})

    @app.exception_handler(TimedOut)
    async def timeout_handler(request: Request, exc: TimedOut) -> JSONResponse:
        detail = f"the search took longer than {settings.request_timeout_s:g}s"
        return JSONResponse(status_code=504, content={"detail": detail})

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz", tags=["operations"], responses={503: {"model": Problem}})
    def readyz(request: Request) -> JSONResponse:
        if request.app.state.retriever is not None:
            return JSONResponse({"status": "ready"})
        detail = request.app.state.load_error or "loading index"
        return JSONResponse({"status": "not ready", "detail": detail}, status_code=503)

    @app.post(
        "/ask", response_model=AskResponse, tags=["questions"], responses=ERROR_RESPONSES, dependencies=[Authorised]
    )
    async def ask(body: AskRequest, request: Request, retriever: ReadyRetriever) -> Response:
        request.state.citeqa = {"mode": body.mode, "k": body.k}
        check_documents(retriever, body.doc_ids)
        asked = await search(request.app, body.question, body.k, body.mode, body.filters(), retriever)
        request.state.citeqa.update(answerable=asked.answer.answerable, passages=len(asked.passages))
        # Built from plain dicts and serialised once; `AskResponse` documents the shape and the
        # tests hold the answers to it, rather than re-validating every response (measured).
        answer = asked.body()
        if body.written:
            answer["written"] = await written_answer(request.app.state.reader, asked)
            answer["took_ms"] = asked.took_ms()
        return JSONBytes(answer)

    @app.post(
        "/ask/stream",
        tags=["questions"],
        responses={
            **ERROR_RESPONSES,
            200: {"content": {"text/event-stream": {}}, "description": "Server-sent events (see below)."},
        },
        dependencies=[Authorised],
        response_class=StreamingResponse,
    )
    async def ask_stream(body: AskRequest, request: Request, retriever: ReadyRetriever) -> StreamingResponse:
        """The answer as server-sent events: `passages` (the body of `/ask`, without a written
        answer), then `delta` events with the written answer's text as the LLM writes it (a
        citation marker never split across two), then `answer` with the checked written answer
        (as `written` in `/ask`). After an LLM failure mid-stream, `answer` is the extractive
        one and the text streamed so far is to be discarded. Errors before the first event
        (a bad body, a full server) are plain HTTP errors, as for `/ask`."""
        request.state.citeqa = {"mode": body.mode, "k": body.k, "stream": True}
        check_documents(retriever, body.doc_ids)
        asked = await search(request.app, body.question, body.k, body.mode, body.filters(), retriever)
        request.state.citeqa.update(answerable=asked.answer.answerable, passages=len(asked.passages))
        reader = request.app.state.reader

        async def events() -> AsyncIterator[bytes]:
            yield sse("passages", asked.body())
            async for kind, data in written_stream(reader, asked):
                if kind == "answer":
                    data = {**data, "took_ms": asked.took_ms()}
                yield sse(kind, data)

        return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.get(
        "/documents",
        response_model=DocumentList,
        tags=["documents"],
        responses=DOCUMENT_ERRORS,
        dependencies=[Authorised],
    )
    def documents(
        retriever: ReadyRetriever,
        offset: Annotated[int, Query(ge=0, description="How many documents to skip.")] = 0,
        limit: Annotated[int, Query(ge=1, le=200, description="How many documents to return.")] = 50,
    ) -> DocumentList:
        return document_list(retriever, offset, limit)

    @app.get(
        "/documents/{doc_id}",
        response_model=DocumentResponse,
        tags=["documents"],
        responses={404: {"model": Problem}, 401: {"model": Problem}, 503: {"model": Problem}},
        dependencies=[Authorised],
    )
    def document(doc_id: str, retriever: ReadyRetriever) -> DocumentResponse:
        # A dictionary lookup by id: no path is ever built from the request.
        found = retriever.index.documents.get(doc_id)
        if found is None:
            raise HTTPException(status_code=404, detail="no document with that id")
        return DocumentResponse(
            doc_id=found.doc_id,
            title=found.title,
            source=found.source,
            format=found.format,
            pages=list(found.pages) or None,
            text=found.text,
        )

    return app


def sse(event: str, data: Any) -> bytes:
    """One server-sent event; orjson writes no raw newline, so the data is one line."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def check_documents(retriever: Retriever, doc_ids: list[str] | None) -> None:
    """A 422 like any other bad field for ids the index does not hold, before the request
    takes a search slot."""
    unknown = retriever.unknown_documents(doc_ids or ())
    if unknown:
        raise HTTPException(status_code=422, detail=[unknown_document_error(doc_ids or [], d) for d in unknown])


def unknown_document_error(doc_ids: list[str], doc_id: str) -> dict[str, Any]:
    return {
        "loc": ["body", "doc_ids", doc_ids.index(doc_id)],
        "msg": f"unknown document id '{doc_id}' (GET /documents lists them)",
        "type": "unknown_document",
    }


def document_list(retriever: Retriever, offset: int, limit: int) -> DocumentList:
    """GET /documents (and the MCP tool `list_documents`): a page of the corpus, in its order."""
    everything = retriever.index.documents
    start = min(offset, len(everything))  # islice refuses offsets past sys.maxsize
    live = retriever.index.manifest.get("live") or {}
    listed = [document_summary(d, live) for d in islice(everything.values(), start, start + limit)]
    generation = generation_of(retriever.index.manifest)
    return DocumentList(total=len(everything), offset=offset, limit=limit, documents=listed, generation=generation)


def document_summary(document: Document, live: dict[str, Any]) -> DocumentSummary:
    recorded = (live.get("documents") or {}).get(document.doc_id) or {}
    return DocumentSummary(
        sha256=recorded.get("sha256") or document.sha256,
        generation=recorded.get("generation") or live.get("generation", 1),
        doc_id=document.doc_id,
        title=document.title,
        source=document.source,
        format=document.format,
        characters=len(document.text),
        pages=len(document.pages) or None,
    )


async def warm(app: FastAPI, retriever: Retriever) -> None:
    """What the first questions would otherwise pay for, done before /readyz says ready: every
    document's display blocks, a first search (the query encoder's first run is slow) and the
    first serialisation of an answer. Measured: a freshly loaded page's first question took
    50-90 ms against 2-3 ms for a new question later. A failure here only costs that speed."""
    displays: Displays = app.state.displays
    try:
        await asyncio.to_thread(displays.warm, retriever.index.documents.values())
        answer = await asyncio.to_thread(retriever.answer, "warming up the query encoder", 5)
        AskRequest.model_validate({"question": "warm", "k": 5})
        orjson.dumps([passage_dict(hit, displays) for hit in answer.hits])
    except Exception as exc:  # a retriever that cannot search yet fails its first question instead
        log.warning("warming up failed: %s: %s", type(exc).__name__, exc)
