"""Index generations: each worker serves one immutable snapshot and swaps in the next one whole.

A request takes the current `Retriever` when it starts and keeps that reference until it ends
(Lucene's SearcherManager: acquire, release, maybeRefresh), so it never sees half of two
generations; the files of a replaced generation stay readable while a request still maps them
(unlinked files live on until their last mapping goes). Every worker polls the manifest every
`poll_s`; a worker therefore serves a new generation at most `poll_s` plus its load time after
the swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import CiteqaError
from ingest.index_store import MANIFEST, file_sha256, load_index, read_manifest
from ingest.updates import LiveState

log = logging.getLogger("citeqa")

LOAD_ATTEMPTS = 5


def generation_of(manifest: dict[str, Any]) -> int:
    return LiveState.of(manifest).generation


def _encoder_files(manifest: dict[str, Any]) -> tuple[object, ...]:
    encoder = manifest.get("query_encoder") or {}
    folder = f"{encoder.get('dir', '')}/"
    artifacts = manifest.get("artifacts") or {}
    listed = sorted((n, a.get("sha256")) for n, a in artifacts.items() if encoder.get("dir") and n.startswith(folder))
    return (json.dumps(encoder, sort_keys=True), *listed) if listed else ("no encoder",)


def manifest_signature(index_dir: Path) -> tuple[int, int, int] | None:
    """Changes whenever the index folder is swapped (a new inode), cheap enough to poll."""
    try:
        stat = (index_dir / MANIFEST).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@dataclass
class Served:
    """What this worker serves and since when (wall clock), for GET /index and the lag measurement."""

    generation: int = 0
    since: float = 0.0
    swapped_at: float = 0.0  # when the index folder of this generation was swapped in (manifest mtime)
    reload_error: str | None = None


class GenerationWatcher:
    """Reloads the app's Retriever when the index's manifest changes; never drops the one serving."""

    def __init__(self, app: Any, index_dir: Path, load: Callable[[], Any], poll_s: float) -> None:
        self.app = app
        self.index_dir = index_dir
        self.load = load
        self.poll_s = poll_s
        self.served = Served()
        self._signature = manifest_signature(index_dir)
        self._wake = asyncio.Event()

    def adopt(self, retriever: Any) -> None:
        """Serve `retriever` from now on: requests that hold the old one finish on it."""
        manifest = retriever.index.manifest
        self.app.state.metrics.describe_index(manifest)
        self.app.state.retriever = retriever  # one reference swap: the whole snapshot or none of it
        swapped = (self.index_dir / MANIFEST).stat().st_mtime if (self.index_dir / MANIFEST).exists() else 0.0
        self.served = Served(generation_of(manifest), time.time(), swapped)

    def wake(self) -> None:
        """Check now (the writer in this process has just swapped a generation in)."""
        self._wake.set()

    def _load_next(self) -> Any:
        """The next generation's Retriever. When its query encoder is the one serving (same files,
        by checksum), only the index is read and the loaded encoder is shared: loading an ONNX
        session per generation was most of a worker's lag."""
        current = self.app.state.retriever
        manifest = read_manifest(self.index_dir)
        if current is None or _encoder_files(manifest) != _encoder_files(current.index.manifest):
            return self.load()
        from service.retriever import Retriever

        return Retriever(load_index(self.index_dir, current.index.model_sha256), current.embedder)

    def _load_consistent(self) -> Any:
        """Load, and keep the result only if the manifest did not change meanwhile: a swap during
        the load could otherwise pair one generation's manifest with the next one's files."""
        last: Exception | None = None
        for _ in range(LOAD_ATTEMPTS):
            try:
                before = file_sha256(self.index_dir / MANIFEST)
                retriever = self._load_next()
                if file_sha256(self.index_dir / MANIFEST) == before:
                    return retriever
            except (CiteqaError, OSError) as exc:
                last = exc
            time.sleep(0.05)
        raise last or RuntimeError("the index kept changing while it loaded")

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()
            signature = manifest_signature(self.index_dir)
            if signature is None or signature == self._signature or self.app.state.retriever is None:
                continue
            try:
                retriever = await asyncio.to_thread(self._load_consistent)
            except Exception as exc:  # the generation serving stays; the error is shown on GET /index
                self.served.reload_error = f"{type(exc).__name__}: {exc}"
                log.error("new index generation failed to load: %s", self.served.reload_error)
                self._signature = signature
                continue
            self._signature = signature  # if it moved again meanwhile, the next poll loads that
            self.adopt(retriever)
            log.info("serving index generation %d (pid %d)", self.served.generation, os.getpid())
