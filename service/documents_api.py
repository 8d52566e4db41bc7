"""The document API: add, replace and delete documents while serving, and the index's status."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from ingest.errors import CiteqaError
from ingest.updates import BadDocumentId, UnknownDocument, UnreadableDocument, accept_delete, accept_put
from service.generations import GenerationWatcher, generation_of
from service.guards import check_api_key
from service.live_writer import IndexWriter, queue_summary, read_status
from service.schemas import Problem
from service.settings import Settings

# The media types a client may send, to the reader (by suffix) that reads them.
MEDIA_SUFFIXES = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/html": ".html",
    "application/pdf": ".pdf",
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (401, 403, 404, 413, 415, 422)}
MAX_WAIT_S = 600.0

router = APIRouter(tags=["documents"])


class LiveIndex:
    """This process's half of the live index: the generation watcher, and the writer (which
    applies updates only in the one process that holds the writer lock)."""

    def __init__(self, app: FastAPI, settings: Settings, load: Callable[[], Any]) -> None:
        self.watcher = GenerationWatcher(app, settings.index_dir, load, settings.live_poll_s)
        loop = asyncio.get_running_loop()

        def swapped() -> None:  # called from the writer's thread
            loop.call_soon_threadsafe(self.watcher.wake)

        self.writer = IndexWriter(settings, swapped)


@asynccontextmanager
async def live_index(app: FastAPI, settings: Settings, load: Callable[[], Any]) -> AsyncIterator[None]:
    live = LiveIndex(app, settings, load)
    app.state.live = live
    task = asyncio.create_task(live.watcher.run())
    live.writer.start()
    try:
        yield
    finally:
        live.writer.stop()
        task.cancel()


async def writable(request: Request) -> None:
    """Writes need the API key; with none configured they are refused unless turned on explicitly."""
    settings: Settings = request.app.state.settings
    key = settings.api_key
    if key is None and not settings.allow_writes:
        raise HTTPException(
            status_code=403,
            detail="writes are off: set CITEQA_API_KEY (writes then need it) or CITEQA_ALLOW_WRITES=true",
        )
    check_api_key(request, key.get_secret_value() if key else None)
    if not settings.corpus_dir.is_dir():
        raise HTTPException(status_code=503, detail=f"no corpus folder at {settings.corpus_dir} to write into")


def _suffix(request: Request, filename: str | None) -> str:
    if filename:
        return Path(filename).suffix.lower()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    suffix = MEDIA_SUFFIXES.get(media_type)
    if suffix is None:
        kinds = ", ".join(MEDIA_SUFFIXES)
        raise HTTPException(status_code=415, detail=f"send one of {kinds}, or name the file with ?filename=")
    return suffix


def _applied_seq(request: Request) -> tuple[int, int]:
    """The journal position and generation of what this worker serves."""
    retriever = request.app.state.retriever
    if retriever is None:
        return 0, 0
    manifest = retriever.index.manifest
    return int((manifest.get("live") or {}).get("applied_seq", 0)), generation_of(manifest)


async def _accepted(request: Request, doc_id: str, seq: int, wait: float) -> JSONResponse:
    """202 once the write is durable and queued; with `wait`, 200 once this worker serves it."""
    live: LiveIndex = request.app.state.live
    live.writer.nudge()
    deadline = time.monotonic() + wait
    while True:
        served_seq, generation = _applied_seq(request)
        if served_seq >= seq:
            return JSONResponse({"doc_id": doc_id, "seq": seq, "status": "applied", "generation": generation})
        if time.monotonic() >= deadline:
            return JSONResponse({"doc_id": doc_id, "seq": seq, "status": "queued"}, status_code=202)
        await asyncio.sleep(0.05)


Wait = Annotated[
    float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait until the write is served (0: answer at once).")
]


def _write_error(exc: CiteqaError) -> HTTPException:
    status = {UnreadableDocument: 422, BadDocumentId: 422, UnknownDocument: 404}.get(type(exc), 409)
    return HTTPException(status_code=status, detail=str(exc))


@router.put("/documents/{doc_id}", status_code=202, responses=WRITE_ERRORS, dependencies=[Depends(writable)])
async def put_document(
    doc_id: str,
    request: Request,
    filename: Annotated[str | None, Query(max_length=255, description="Names the format by its suffix.")] = None,
    wait: Wait = 0,
) -> JSONResponse:
    """Add or replace a document with the file's bytes; its format comes from the Content-Type
    or the `filename`. A file no reader can read is refused (422) and nothing of it is kept."""
    suffix = _suffix(request, filename)
    data = await request.body()
    settings: Settings = request.app.state.settings
    try:
        seq = await asyncio.to_thread(accept_put, settings.index_dir, settings.corpus_dir, doc_id, data, suffix)
    except CiteqaError as exc:
        raise _write_error(exc) from None
    return await _accepted(request, doc_id, seq, wait)


@router.delete("/documents/{doc_id}", status_code=202, responses=WRITE_ERRORS, dependencies=[Depends(writable)])
async def delete_document(doc_id: str, request: Request, wait: Wait = 0) -> JSONResponse:
    settings: Settings = request.app.state.settings
    try:
        seq = await asyncio.to_thread(accept_delete, settings.index_dir, settings.corpus_dir, doc_id)
    except CiteqaError as exc:
        raise _write_error(exc) from None
    return await _accepted(request, doc_id, seq, wait)


async def readable(request: Request) -> None:
    key = request.app.state.settings.api_key
    check_api_key(request, key.get_secret_value() if key else None)


@router.get("/index", tags=["operations"], dependencies=[Depends(readable)])
async def index_status(request: Request) -> dict[str, Any]:
    """What this worker serves, the queued writes, and what the writer is doing (or failed at)."""
    settings: Settings = request.app.state.settings
    live: LiveIndex = request.app.state.live
    served_seq, generation = _applied_seq(request)
    served = live.watcher.served
    key = settings.api_key
    return {
        "generation": generation,
        "applied_seq": served_seq,
        "pid": os.getpid(),
        "served_since": served.since or None,
        "swapped_at": served.swapped_at or None,
        "reload_error": served.reload_error,
        "writes": key is not None or settings.allow_writes,
        "watch": settings.watch,
        "queue": await asyncio.to_thread(queue_summary, settings.index_dir),
        "writer": read_status(settings.index_dir),
    }
