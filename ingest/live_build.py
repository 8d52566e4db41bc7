"""Apply the journal of accepted writes: one incremental rebuild, swapped in with its record."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.chunking import ChunkerSettings
from ingest.documents import Document
from ingest.embedding import Embedder
from ingest.index_store import DOCUMENTS_FILE, read_manifest
from ingest.pipeline import EncoderExport, IngestSettings, IngestSummary, Progress, RetrievalSettings, build_index
from ingest.updates import LiveState, crash_point, replay, trim


@dataclass(frozen=True)
class Applied:
    generation: int
    applied_seq: int
    summary: IngestSummary


def ingest_settings_of(manifest: dict[str, Any]) -> IngestSettings:
    """The settings the serving index was built with: an update must not re-chunk the corpus differently."""
    stored = manifest.get("ingest") or {}
    return IngestSettings(
        ChunkerSettings(**stored.get("chunker", {})),
        bool(stored.get("embed_context", True)),
        bool(stored.get("onnx_encoder", False)),
    )


def _retrieval_of(manifest: dict[str, Any]) -> RetrievalSettings | None:
    """Keep the ranking the operator tuned (`citeqa eval --tune`) across updates."""
    stored = manifest.get("retrieval") or {}
    known = {name: stored[name] for name in RetrievalSettings.__dataclass_fields__ if name in stored}
    return RetrievalSettings(**known) if known else None


def _seeded(index_dir: Path, state: LiveState) -> LiveState:
    """An index from `citeqa ingest` has no per-document record yet: its documents are generation 1."""
    if state.documents:
        return state
    documents = {}
    with (index_dir / DOCUMENTS_FILE).open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            sha = Document(**row).sha256
            documents[row["doc_id"]] = {"sha256": sha, "generation": state.generation}
    return LiveState(state.generation, state.applied_seq, documents)


def apply_journal(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    export_encoder: EncoderExport | None = None,
    progress: Progress | None = None,
) -> Applied | None:
    """Rebuild the index from the corpus with every queued write in it; None when the serving index
    already holds them all (a crash after the swap, before the journal was trimmed)."""
    upto = replay(index_dir, corpus_dir)
    manifest = read_manifest(index_dir)
    state = LiveState.of(manifest)
    if upto <= state.applied_seq and upto > 0:
        trim(index_dir, state.applied_seq)
        return None
    applied_seq = max(upto, state.applied_seq)
    seeded = _seeded(index_dir, state)

    def watched(stage: str, done: int, total: int) -> None:
        if stage == "embed":
            crash_point("building")  # mid-build: the scratch folders exist, the old index serves
        if progress is not None:
            progress(stage, done, total)

    summary = build_index(
        corpus_dir,
        index_dir,
        embedder,
        ingest_settings_of(manifest),
        watched,
        retrieval=_retrieval_of(manifest),
        export_encoder=export_encoder,
        live=lambda documents: seeded.next(documents, applied_seq),
    )
    crash_point("swapped")
    trim(index_dir, applied_seq)
    return Applied(seeded.generation + 1, applied_seq, summary)
