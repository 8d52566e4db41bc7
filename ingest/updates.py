"""Live corpus updates: accepted writes in a journal beside the index, applied whole or not at all.

A write is parsed in memory first (nothing unreadable reaches the corpus), staged as a hidden
file in the corpus folder and fsynced, then recorded as one journal entry: that entry, durable,
is the acknowledgement. Under the same lock the staged file is renamed into place. One applier
then rebuilds the index from the corpus through `build_index` (only changed texts are embedded,
the rest come from the cache) and records, in the new manifest, the last journal entry it holds:
the swap of the index folder and that record are one rename, so a kill -9 anywhere leaves either
the previous generation with its entries still queued, or the new one with them applied.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.documents import DOC_ID_PATTERN, Document, _default_id, document_sources
from ingest.errors import CiteqaError, CorpusError
from ingest.readers import READERS

ENTRY = re.compile(r"^(\d{12})\.json$")
CRASH_ENV = "CITEQA_TEST_CRASH_AT"  # tests only: kill -9 this process at a named point of an update


class UnreadableDocument(CiteqaError):
    """The bytes sent cannot be read by their format's reader: refused before anything is written."""


class UnknownDocument(CiteqaError):
    """No file in the corpus holds a document with that id."""


class BadDocumentId(CiteqaError):
    """An id that cannot name a file of the corpus."""


def crash_point(name: str) -> None:
    """A real kill -9 at a named point, so that crash tests hit exactly the moment they name."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def journal_dir(index_dir: Path) -> Path:
    # Beside the index, not in it: the index folder is replaced whole at every swap.
    return index_dir.with_name(f".{index_dir.name}.journal")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Temp file beside `path`, fsync, rename, fsync the folder: the old bytes or the new, never half."""
    temp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with temp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _fsync_dir(path.parent)


@contextmanager
def journal_lock(index_dir: Path) -> Iterator[Path]:
    """Writers in every server process take turns: sequence numbers and corpus renames in one order."""
    folder = journal_dir(index_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "lock").open("a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def pending_entries(index_dir: Path) -> list[dict[str, Any]]:
    folder = journal_dir(index_dir)
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.iterdir()):
        if ENTRY.match(path.name):
            try:
                entries.append(json.loads(path.read_text(encoding="utf-8")))
            except FileNotFoundError:
                continue  # trimmed by the applier meanwhile: already in the index
    return entries


def _next_seq(folder: Path) -> int:
    counter = folder / "last_seq"
    last = int(counter.read_text()) if counter.is_file() else 0
    listed = [int(m.group(1)) for p in folder.iterdir() if (m := ENTRY.match(p.name))]
    return max([last, *listed]) + 1


def document_files(corpus_dir: Path) -> dict[str, list[Path]]:
    """Each document id with the files that make it (the document and its sidecar), read the way
    ingest reads ids, without parsing any document."""
    paths, _ = document_sources(corpus_dir)
    found: dict[str, list[Path]] = {}
    for path in paths:
        sidecar = path.with_name(path.stem + ".meta.json")
        doc_id: object = _default_id(path, corpus_dir)
        if sidecar.is_file():
            # Ingest reports a bad sidecar; here it only cannot name the file.
            with contextlib.suppress(OSError, ValueError, AttributeError):
                doc_id = json.loads(sidecar.read_text(encoding="utf-8")).get("doc_id", doc_id)
        found.setdefault(str(doc_id), []).append(path)
    return found


def parse_upload(doc_id: str, data: bytes, suffix: str) -> None:
    """Read the bytes with their format's reader, in memory; raise the reader's message if it cannot."""
    reader = READERS.get(suffix)
    if reader is None:
        raise UnreadableDocument(f"unsupported file type '{suffix}' (readers: {', '.join(sorted(READERS))})")
    if not data.strip():
        raise UnreadableDocument("document is empty")
    try:
        parsed = reader(data, Path(f"{doc_id}{suffix}"))
    except CiteqaError as exc:
        raise UnreadableDocument(str(exc).removeprefix(f"{doc_id}{suffix}: ")) from exc
    except Exception as exc:  # a reader's library failing on hostile bytes is still the file's fault
        raise UnreadableDocument(f"{type(exc).__name__}: {exc}") from exc
    if not parsed.text.strip():
        raise UnreadableDocument("no text to index")


def _check_id(doc_id: str, suffix: str) -> None:
    root = Path("/corpus")  # the id a file named after it gets (ids are paths made id-safe)
    if not DOC_ID_PATTERN.match(doc_id) or _default_id(root / f"{doc_id}{suffix}", root) != doc_id:
        raise BadDocumentId(f"doc_id must match {DOC_ID_PATTERN.pattern} and not end with '.' or '-'")


def apply_entry(corpus_dir: Path, entry: dict[str, Any]) -> None:
    """Bring the corpus to what `entry` says; applying it twice changes nothing (replay after a crash)."""
    if entry.get("staged"):
        staged = corpus_dir / entry["staged"]
        if staged.exists():
            os.replace(staged, corpus_dir / entry["target"])
    for name in entry.get("remove", []):
        (corpus_dir / name).unlink(missing_ok=True)
    _fsync_dir(corpus_dir)


def _journal(index_dir: Path, corpus_dir: Path, entry: dict[str, Any]) -> int:
    with journal_lock(index_dir) as folder:
        seq = _next_seq(folder)
        entry = {**entry, "seq": seq}
        write_durably(folder / f"{seq:012d}.json", json.dumps(entry, sort_keys=True).encode())
        (folder / "last_seq").write_text(str(seq))  # a hint: the entries themselves are the record
        crash_point("journaled")
        apply_entry(corpus_dir, entry)
        _mark_applied(folder, seq)
        crash_point("corpus")
    return seq


def _mark_applied(folder: Path, seq: int) -> None:
    # Renamed into place, never half-written; no fsync: a kill -9 keeps the page cache, and a
    # mark lost with the machine only replays the last entry, which is then a no-op.
    temp = folder / ".in_corpus.tmp"
    temp.write_text(str(seq))
    os.replace(temp, folder / "in_corpus")


def _in_corpus(folder: Path) -> int:
    mark = folder / "in_corpus"
    return int(mark.read_text() or 0) if mark.is_file() else 0


def accept_put(index_dir: Path, corpus_dir: Path, doc_id: str, data: bytes, suffix: str) -> int:
    """Parse, stage, journal and place one document; returns its journal sequence number."""
    _check_id(doc_id, suffix)
    parse_upload(doc_id, data, suffix)
    existing = document_files(corpus_dir).get(doc_id, [])
    # Replacing keeps the file where it was (its sidecar still applies), with the new format's suffix.
    target = existing[0].with_suffix(suffix) if existing else corpus_dir / f"{doc_id}{suffix}"
    owner = next((i for i, files in document_files(corpus_dir).items() if target in files and i != doc_id), None)
    if owner is not None:
        raise BadDocumentId(f"{target.name} already holds document '{owner}'")
    staged = corpus_dir / f".{target.name}.staged-{uuid.uuid4().hex[:8]}"
    try:
        write_durably(staged, data)
        relative = corpus_dir.resolve()
        entry = {
            "op": "put",
            "doc_id": doc_id,
            "sha256": hashlib.sha256(data).hexdigest(),
            "target": target.resolve().relative_to(relative).as_posix(),
            "staged": staged.resolve().relative_to(relative).as_posix(),
            "remove": [p.resolve().relative_to(relative).as_posix() for p in existing if p != target],
        }
        return _journal(index_dir, corpus_dir, entry)
    finally:
        staged.unlink(missing_ok=True)  # present only when journaling failed


def accept_delete(index_dir: Path, corpus_dir: Path, doc_id: str) -> int:
    existing = document_files(corpus_dir).get(doc_id)
    if not existing:
        raise UnknownDocument(f"no document '{doc_id}' in the corpus")
    relative = corpus_dir.resolve()
    names = []
    for path in existing:
        names.append(path.resolve().relative_to(relative).as_posix())
        sidecar = path.with_name(path.stem + ".meta.json")
        if sidecar.exists():
            names.append(sidecar.resolve().relative_to(relative).as_posix())
    return _journal(index_dir, corpus_dir, {"op": "delete", "doc_id": doc_id, "remove": names})


def replay(index_dir: Path, corpus_dir: Path) -> int:
    """Apply the journal entries the corpus lacks (a crash may have come between the two);
    returns the last sequence number the corpus now holds (0: none queued)."""
    with journal_lock(index_dir) as folder:
        entries = pending_entries(index_dir)
        # Only what the corpus lacks: an older entry applied again would undo a newer one (a delete
        # replayed after the same id was added back).
        done = _in_corpus(folder)
        for entry in entries:
            if int(entry["seq"]) > done:
                apply_entry(corpus_dir, entry)
                _mark_applied(folder, int(entry["seq"]))
        return max((int(e["seq"]) for e in entries), default=0)


def trim(index_dir: Path, applied_seq: int) -> None:
    """Drop the entries that the serving index holds."""
    with journal_lock(index_dir) as folder:
        for path in folder.iterdir():
            match = ENTRY.match(path.name)
            if match and int(match.group(1)) <= applied_seq:
                path.unlink()


@dataclass(frozen=True)
class LiveState:
    """The manifest's `live` record: which generation this is, the last journal entry it holds,
    and for each document its content hash and the generation its content last changed in."""

    generation: int
    applied_seq: int
    documents: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> LiveState:
        live = manifest.get("live") or {}
        # An index written by `citeqa ingest` is generation 1 with nothing from the journal.
        return cls(int(live.get("generation", 1)), int(live.get("applied_seq", 0)), dict(live.get("documents", {})))

    def next(self, documents: list[Document], applied_seq: int) -> dict[str, Any]:
        generation = self.generation + 1
        listed = {}
        for document in documents:
            before = self.documents.get(document.doc_id, {})
            changed = before.get("sha256") != document.sha256
            listed[document.doc_id] = {
                "sha256": document.sha256,
                "generation": generation if changed or not before else before["generation"],
            }
        return {"generation": generation, "applied_seq": applied_seq, "documents": listed}


ManifestLive = Callable[[list[Document]], dict[str, Any]]


def require_corpus(corpus_dir: Path) -> None:
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
