"""Where the ingest stages run: in this process (local) or on a Ray cluster. Same stages, same results."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ingest.embedding import Embedder
from ingest.stages import chunk_parsed, parse_file

Progress = Callable[[str, int, int], None]
EMBED_SLICE = 256  # texts handed to the embedder at once, between progress reports


class Engine(Protocol):
    name: str

    def parse(self, paths: list[Path], corpus_dir: Path) -> list[dict[str, Any]]:
        """`stages.parse_file` over every path, results in the order of `paths`."""
        ...

    def chunk(
        self, documents: list[dict[str, Any]], settings: dict[str, Any], chrome: list[str]
    ) -> list[dict[str, Any]]:
        """`stages.chunk_parsed` over every document, results in order."""
        ...

    def embed(self, texts: list[str], stage: str, progress: Progress) -> np.ndarray:
        """L2-normalised vectors of `texts`, row for row, from the verified model."""
        ...

    def start(self, encoder_dir: Path | None) -> None:
        """Called once the query encoder is exported (None: embed with the model itself)."""
        ...

    def cluster(self) -> dict[str, Any]:
        """What it ran on, for the manifest: nodes, CPUs, GPUs."""
        ...

    def close(self) -> None:
        """Let go of what the engine started (a local Ray instance)."""
        ...


def embed_in_slices(embedder: Embedder, texts: list[str], stage: str, progress: Progress) -> np.ndarray:
    # Slices of texts of similar length: an embedder pads each of its batches to the longest text.
    order = sorted(range(len(texts)), key=lambda number: len(texts[number]))
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for begin in range(0, len(texts), EMBED_SLICE):
        part = order[begin : begin + EMBED_SLICE]
        vectors[part] = embedder.embed_documents([texts[number] for number in part])
        progress(stage, min(begin + EMBED_SLICE, len(texts)), len(texts))
    return vectors


class LocalEngine:
    """Every stage in this process, one document after another; the embedder given is used as is."""

    name = "local"

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def parse(self, paths: list[Path], corpus_dir: Path) -> list[dict[str, Any]]:
        return [parse_file(str(path), str(corpus_dir)) for path in paths]

    def chunk(
        self, documents: list[dict[str, Any]], settings: dict[str, Any], chrome: list[str]
    ) -> list[dict[str, Any]]:
        return [chunk_parsed(document, settings, chrome) for document in documents]

    def embed(self, texts: list[str], stage: str, progress: Progress) -> np.ndarray:
        return embed_in_slices(self._embedder, texts, stage, progress)

    def start(self, encoder_dir: Path | None) -> None:
        return None  # the embedder given already embeds with the export (OnnxDocumentEmbedder.export)

    def cluster(self) -> dict[str, Any]:
        return {"nodes": 1, "cpus": len(os.sched_getaffinity(0)), "gpus": 0}

    def close(self) -> None:
        return None


def _ray_engine(embedder: Embedder, **options: Any) -> Engine:
    from ingest.ray_engine import RayEngine  # Ray is an optional extra: imported only when chosen

    return RayEngine(embedder, **options)


def _local_engine(embedder: Embedder, **options: Any) -> Engine:
    return LocalEngine(embedder)


ENGINES: dict[str, Callable[..., Engine]] = {"local": _local_engine, "ray": _ray_engine}


def make_engine(name: str, embedder: Embedder, **options: Any) -> Engine:
    return ENGINES[name](embedder, **options)
