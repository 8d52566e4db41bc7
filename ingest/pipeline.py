"""The ingest pipeline in one place: load → parse → chunk → embed → write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.chunking import Chunk, ChunkerSettings, chunk_document
from ingest.documents import corpus_hash, load_corpus
from ingest.embedding import Embedder, passage_text_for_embedding
from ingest.errors import CiteqaError
from ingest.index_store import ingest_lock, remove_stale_builds, verify_index, write_index

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class IngestSettings:
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    embed_context: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"chunker": self.chunker.as_dict(), "embed_context": self.embed_context}


@dataclass(frozen=True)
class IngestSummary:
    documents: int
    blocks: int
    chunks: int
    duplicates_skipped: int
    seconds: float
    corpus_hash: str
    skipped: bool = False


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def index_is_current(index_dir: Path, corpus_dir: Path, settings: IngestSettings, model_sha256: str) -> bool:
    """True when the index verifies and was built from this corpus, with these settings and model."""
    try:
        manifest = verify_index(index_dir, model_sha256)
        return bool(
            manifest.get("corpus", {}).get("hash") == corpus_hash(load_corpus(corpus_dir))
            and manifest.get("ingest") == settings.as_dict()
        )
    except CiteqaError:
        return False


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: IngestSettings | None = None,
    progress: Progress = _no_progress,
) -> IngestSummary:
    settings = settings or IngestSettings()
    started = time.perf_counter()
    with ingest_lock(index_dir):
        remove_stale_builds(index_dir)
        documents = load_corpus(corpus_dir)
        chunks: list[Chunk] = []
        texts: list[str] = []
        blocks = duplicates = 0
        for number, document in enumerate(documents, 1):
            doc_blocks, doc_chunks = chunk_document(document, settings.chunker)
            blocks += len(doc_blocks)
            duplicates += sum(1 for b in doc_blocks if b.duplicate_of is not None)
            chunks.extend(doc_chunks)
            texts.extend(passage_text_for_embedding(c, document, settings.embed_context) for c in doc_chunks)
            progress("parse", number, len(documents))
        vectors = embedder.embed_documents(texts)
        progress("embed", len(texts), len(texts))
        digest = corpus_hash(documents)
        write_index(
            index_dir,
            documents,
            chunks,
            vectors,
            {
                "model": {
                    "name": embedder.name,
                    "sha256": embedder.weights_sha256,
                    "dimension": embedder.dimension,
                    "normalized": True,
                },
                "ingest": settings.as_dict(),
                "corpus": {"hash": digest, "documents": [d.metadata() for d in documents]},
                "counts": {"blocks": blocks, "duplicate_blocks_skipped": duplicates},
            },
        )
    return IngestSummary(len(documents), blocks, len(chunks), duplicates, time.perf_counter() - started, digest)
