"""The one background ingest: applies queued writes (and, with --watch, files dropped in by hand).

Every server process starts one of these; a file lock beside the index makes exactly one of them
the writer, and another takes over if that process dies. The writer coalesces a burst of writes
into one rebuild and reports what it does in a status file that every worker shows on GET /index.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from ingest.documents import corpus_files, corpus_hash, load_corpus
from ingest.embedding import Embedder
from ingest.index_store import read_manifest
from ingest.live_build import apply_journal
from ingest.pipeline import EncoderExport
from ingest.updates import journal_dir, pending_entries
from service.settings import Settings

log = logging.getLogger("citeqa")

SETTLE_S = 0.2  # a burst is over when the queue has not grown for this long...
MAX_COALESCE_S = 2.0  # ...or after this long, so that a steady stream still lands
RETRY_S = 5.0  # after a failed build, unless the queue or the corpus changes first


def status_path(index_dir: Path) -> Path:
    return index_dir.with_name(f".{index_dir.name}.live-status.json")


def read_status(index_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(status_path(index_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"state": "no writer yet"}
    return data if isinstance(data, dict) else {}


def corpus_signature(corpus_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and mtimes of the corpus files: a dropped, edited or removed file changes it."""
    found = []
    for path in corpus_files(corpus_dir):
        try:
            stat = path.stat()
        except OSError:
            continue  # removed between listing and stat: the next poll sees it gone
        found.append((path.relative_to(corpus_dir).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


class IndexWriter:
    def __init__(self, settings: Settings, on_swap: Callable[[], None]) -> None:
        self.index_dir = settings.index_dir
        self.corpus_dir = settings.corpus_dir
        self.settings = settings
        self.on_swap = on_swap
        self.is_writer = False
        self._lock: IO[str] | None = None
        self._nudge = threading.Event()
        self._stop = threading.Event()
        self._embedder: tuple[Embedder, EncoderExport | None] | None = None
        self._status: dict[str, Any] = {"state": "idle"}
        self._last_write = 0.0
        self._thread = threading.Thread(target=self._run, name="citeqa-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._nudge.set()

    def nudge(self) -> None:
        self._nudge.set()

    # --- status ----------------------------------------------------------------------------

    def _report(self, force: bool = False, **fields: Any) -> None:
        self._status.update(fields, pid=os.getpid(), updated_at=time.time())
        if not force and time.monotonic() - self._last_write < 0.2:
            return  # progress ticks: the file is rewritten at most five times a second
        self._last_write = time.monotonic()
        path = status_path(self.index_dir)
        temp = path.with_name(f"{path.name}.{os.getpid()}")
        temp.write_text(json.dumps(self._status), encoding="utf-8")
        os.replace(temp, path)

    # --- the loop ----------------------------------------------------------------------------

    def _take_role(self) -> bool:
        handle = self.index_dir.with_name(f".{self.index_dir.name}.writer.lock").open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock = handle  # held (open) for the life of this process: the OS drops it if we die
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._take_role():
                self._stop.wait(1.0)
                continue
            self.is_writer = True
            log.info("this process (pid %d) applies index updates", os.getpid())
            try:
                self._serve_writes()
            except Exception:  # the writer must never die silently: report and keep going
                log.exception("index writer failed")
                self._report(force=True, state="error", error="the writer loop failed; see the server log")
                self._stop.wait(RETRY_S)

    def _stale_on_start(self) -> bool:
        """With --watch, files may have changed while no server ran: compare the corpus with the index."""
        if not self.settings.watch:
            return False
        try:
            indexed = read_manifest(self.index_dir).get("corpus", {}).get("hash")
            return bool(corpus_hash(load_corpus(self.corpus_dir)) != indexed)
        except Exception as exc:  # reported, then the normal loop retries on the next change
            self._report(force=True, state="error", error=str(exc))
            return False

    def _serve_writes(self) -> None:
        self._report(force=True, state="idle", error=None)
        seen = corpus_signature(self.corpus_dir) if self.settings.watch else ()
        dirty = self._stale_on_start()
        failed_at: float | None = None
        while not self._stop.is_set():
            queued = bool(pending_entries(self.index_dir))
            if self.settings.watch:
                now = corpus_signature(self.corpus_dir)
                dirty, seen = dirty or now != seen, now
            retry_due = failed_at is None or time.monotonic() - failed_at > RETRY_S
            if (queued or dirty) and retry_due:
                self._coalesce()
                failed_at = None if self._apply() else time.monotonic()
                dirty = False
                if self.settings.watch:
                    seen = corpus_signature(self.corpus_dir)
                continue
            self._nudge.wait(self.settings.live_poll_s)
            self._nudge.clear()

    def _coalesce(self) -> None:
        started = time.monotonic()
        count = len(pending_entries(self.index_dir))
        while time.monotonic() - started < MAX_COALESCE_S and not self._stop.is_set():
            time.sleep(SETTLE_S)
            now = len(pending_entries(self.index_dir))
            if now == count:
                return
            count = now

    def _load_embedder(self) -> tuple[Embedder, EncoderExport | None]:
        if self._embedder is None:
            model_dir = self.settings.resolved_model_path()
            sha = self.settings.model_sha256
            onnx = read_manifest(self.index_dir).get("query_encoder", {}).get("backend") == "onnx"
            if onnx:
                from ingest.onnx_documents import OnnxDocumentEmbedder

                document_embedder = OnnxDocumentEmbedder(model_dir, sha)
                index_dir = self.index_dir

                def export(folder: Path) -> dict[str, Any]:
                    # The serving index's encoder is copied, not re-exported: same weights, same exporter.
                    return document_embedder.export(folder, reuse_from=index_dir)

                self._embedder = (document_embedder, export)
            else:
                from ingest.embedding import SentenceTransformerEmbedder

                self._embedder = (SentenceTransformerEmbedder(model_dir, sha), None)
        return self._embedder

    def _apply(self) -> bool:
        started = time.monotonic()
        queue = len(pending_entries(self.index_dir))
        self._report(force=True, state="building", queued=queue, stage=None, done=0, total=0, error=None)
        try:
            embedder, export = self._load_embedder()

            def progress(stage: str, done: int, total: int) -> None:
                self._report(stage=stage, done=done, total=total)

            applied = apply_journal(self.corpus_dir, self.index_dir, embedder, export, progress)
        except Exception as exc:  # a bad corpus, a CLI ingest holding the lock: queued writes wait
            message = str(exc) if not isinstance(exc, KeyError | TypeError) else f"{type(exc).__name__}: {exc}"
            log.error("index update failed: %s", message)
            self._report(force=True, state="error", error=message)
            return False
        if applied is not None:
            summary = applied.summary
            last = {
                "generation": applied.generation,
                "applied_seq": applied.applied_seq,
                "seconds": round(time.monotonic() - started, 3),
                "texts_embedded": summary.texts_embedded,
                "texts_cached": summary.texts_cached,
                "documents": summary.documents,
            }
            log.info("index generation %d built in %.2fs", applied.generation, last["seconds"])
            self._report(force=True, state="idle", last_build=last, stage=None)
        else:
            self._report(force=True, state="idle", stage=None)
        self.on_swap()
        return True


def queue_summary(index_dir: Path) -> list[dict[str, Any]]:
    if not journal_dir(index_dir).is_dir():
        return []
    return [{"seq": e["seq"], "op": e["op"], "doc_id": e["doc_id"]} for e in pending_entries(index_dir)]
