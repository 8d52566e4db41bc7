"""The one search path that the service, the CLI and the evaluation all use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.chunking import Chunk
from ingest.documents import Document
from ingest.embedding import Embedder, SentenceTransformerEmbedder, verify_model
from ingest.errors import CiteqaError
from ingest.index_store import LoadedIndex, load_index, verify_index

DEFAULT_MODE = "dense"


class UnknownMode(CiteqaError):
    """A search mode that is not implemented."""


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    chunk: Chunk
    document: Document


def overlaps(a: Chunk, b: Chunk) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


class Retriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder
        self._modes: dict[str, Callable[[str, int], list[tuple[int, float]]]] = {"dense": self._dense}

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(self._modes)

    def _dense(self, question: str, depth: int) -> list[tuple[int, float]]:
        query = np.asarray(self.embedder.embed_query(question), dtype=np.float32).reshape(1, -1)
        scores, ids = self.index.dense.search(query, min(depth, self.index.dense.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def search(self, question: str, k: int = 5, mode: str = DEFAULT_MODE) -> list[Hit]:
        """Top-k passages, best first, never two whose spans overlap."""
        ranker = self._modes.get(mode)
        if ranker is None:
            raise UnknownMode(f"unknown mode '{mode}' (choose from {', '.join(self._modes)})")
        kept: list[Hit] = []
        for position, score in ranker(question, k * 4 + 8):
            chunk = self.index.chunks[position]
            if any(overlaps(chunk, hit.chunk) for hit in kept):
                continue
            kept.append(Hit(len(kept) + 1, score, chunk, self.index.documents[chunk.doc_id]))
            if len(kept) == k:
                break
        return kept


def verify_serving(index_dir: Path, model_dir: Path, expected_model_sha256: str) -> None:
    """Cheap checks before anything heavy is imported: model weights and every artifact."""
    model_sha = verify_model(model_dir, expected_model_sha256)
    verify_index(index_dir, model_sha)


def open_retriever(index_dir: Path, model_dir: Path, expected_model_sha256: str) -> Retriever:
    verify_serving(index_dir, model_dir, expected_model_sha256)  # fail fast, before the model loads
    embedder = SentenceTransformerEmbedder(model_dir, expected_model_sha256)
    return Retriever(load_index(index_dir, embedder.weights_sha256), embedder)
