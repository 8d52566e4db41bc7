"""Embeddings already computed, kept beside the index, so that a re-ingest embeds only new text.

`<index>.cache/` holds `vectors.npy` (float32, one row per distinct text), `keys.npy` (uint8,
the sha256 of each text, row for row) and `cache.json` (format, the model weights' sha256, the
embedder, the dimension, and the sha256 and size of both arrays). A vector is reused only for
the same text embedded by the same weights and the same embedder (runtime). The cache lives
beside the index, not inside it: the service never reads or verifies it, and swapping in a new
index leaves it alone. It is rewritten whole after each embedding (a temporary folder, fsynced,
swapped in atomically) with exactly the texts that build used, so unused entries are pruned.
A cache that does not verify (other model or embedder, checksum, shape, dtype, a vector that is
not unit length) is ignored with a warning, and every text is embedded again. No pickle: the
arrays are loaded with `allow_pickle=False`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding import Embedder
from ingest.index_store import file_sha256, swap_into_place

FORMAT = 1
META_FILE = "cache.json"
KEYS_FILE = "keys.npy"
VECTORS_FILE = "vectors.npy"
log = logging.getLogger(__name__)


def cache_dir(index_dir: Path) -> Path:
    return index_dir.with_name(f"{index_dir.name}.cache")


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class CacheIdentity:
    """What a vector depends on besides its text."""

    model_sha256: str
    embedder: str
    dimension: int

    @classmethod
    def of(cls, embedder: Embedder) -> CacheIdentity:
        return cls(embedder.weights_sha256, type(embedder).__qualname__, int(embedder.dimension))


class CacheInvalid(Exception):
    """The cache on disk cannot be trusted; it is ignored and rebuilt."""


def _read(directory: Path, identity: CacheIdentity) -> tuple[np.ndarray, np.ndarray]:
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheInvalid(f"{META_FILE} unreadable ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CacheInvalid(f"{META_FILE}: not format {FORMAT}")
    if meta.get("identity") != asdict(identity):
        raise CacheInvalid(f"built by {meta.get('identity')}, not {asdict(identity)}")
    files = meta.get("files")
    if not isinstance(files, dict) or set(files) != {KEYS_FILE, VECTORS_FILE}:
        raise CacheInvalid(f"{META_FILE}: lists {files!r}")
    for name, expected in files.items():  # checksums before anything is parsed
        path = directory / name
        if not isinstance(expected, dict) or not path.is_file() or path.stat().st_size != expected.get("bytes"):
            raise CacheInvalid(f"{name}: missing, or its size differs from {META_FILE}")
        if file_sha256(path) != expected.get("sha256"):
            raise CacheInvalid(f"{name}: sha256 differs from {META_FILE} (file edited or damaged)")
    try:
        keys = np.load(directory / KEYS_FILE, allow_pickle=False)
        vectors = np.load(directory / VECTORS_FILE, allow_pickle=False)
    except (OSError, ValueError, MemoryError) as exc:
        raise CacheInvalid(f"arrays unreadable ({exc})") from exc
    rows = meta.get("count")
    if keys.dtype != np.uint8 or keys.shape != (rows, 32):
        raise CacheInvalid(f"{KEYS_FILE}: {keys.dtype} {keys.shape}, expected uint8 ({rows}, 32)")
    if vectors.dtype != np.float32 or vectors.shape != (rows, identity.dimension):
        raise CacheInvalid(f"{VECTORS_FILE}: {vectors.dtype} {vectors.shape}, expected float32 ({rows}, dimension)")
    if not np.all(np.abs(np.linalg.norm(vectors, axis=1) - 1.0) < 1e-3):  # also false for NaN
        raise CacheInvalid(f"{VECTORS_FILE}: holds vectors that are not unit length")
    return keys, vectors


def _write_file(path: Path, write: Callable[[Any], None]) -> dict[str, Any]:
    with path.open("wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


class EmbeddingCache:
    """Vectors by text for one embedder; `open` reads what verifies, `save` writes what a build used."""

    def __init__(self, directory: Path, identity: CacheIdentity) -> None:
        self.directory = directory
        self.identity = identity
        self._rows: dict[bytes, np.ndarray] = {}
        self.loaded = 0  # entries read from disk
        self.added = 0  # entries embedded in this run

    @classmethod
    def open(cls, directory: Path, identity: CacheIdentity) -> EmbeddingCache:
        cache = cls(directory, identity)
        if not directory.exists():
            return cache
        try:
            keys, vectors = _read(directory, identity)
        except CacheInvalid as exc:
            log.warning("embedding cache %s ignored, every text is embedded again: %s", directory, exc)
            return cache
        cache._rows = {key.tobytes(): vector for key, vector in zip(keys, vectors, strict=True)}
        cache.loaded = len(cache._rows)
        return cache

    def missing(self, texts: list[str]) -> list[str]:
        """Distinct texts without a vector, in order of first appearance."""
        seen: set[bytes] = set()
        result = []
        for text in texts:
            key = text_key(text)
            if key not in self._rows and key not in seen:
                seen.add(key)
                result.append(text)
        return result

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        if vectors.shape != (len(texts), self.identity.dimension):
            raise ValueError(f"{vectors.shape} vectors for {len(texts)} texts of dimension {self.identity.dimension}")
        for text, vector in zip(texts, np.asarray(vectors, dtype=np.float32), strict=True):
            self._rows[text_key(text)] = vector
        self.added += len(texts)

    def vectors(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.identity.dimension), dtype=np.float32)
        return np.ascontiguousarray(np.stack([self._rows[text_key(t)] for t in texts]), dtype=np.float32)

    def save(self, texts: list[str]) -> int:
        """Replace the cache on disk with the vectors of `texts`, pruning every other entry;
        returns how many distinct texts it holds."""
        keys = list(dict.fromkeys(text_key(t) for t in texts))
        if self.added == 0 and len(keys) == self.loaded:
            return len(keys)  # nothing embedded and nothing to prune: the cache on disk is already this
        for leftover in self.directory.parent.glob(f".{self.directory.name}.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # from a killed ingest (we hold the ingest lock)
        build = self.directory.with_name(f".{self.directory.name}.tmp-{uuid.uuid4().hex[:8]}")
        build.mkdir(parents=True)
        try:
            key_array = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
            vector_array = np.stack([self._rows[k] for k in keys]) if keys else np.zeros((0, self.identity.dimension))
            files = {
                KEYS_FILE: _write_file(build / KEYS_FILE, lambda h: np.save(h, key_array, allow_pickle=False)),
                VECTORS_FILE: _write_file(
                    build / VECTORS_FILE,
                    lambda h: np.save(h, vector_array.astype(np.float32), allow_pickle=False),
                ),
            }
            meta = {"format": FORMAT, "identity": asdict(self.identity), "count": len(keys), "files": files}
            _write_file(build / META_FILE, lambda h: h.write((json.dumps(meta, indent=2) + "\n").encode()))
            swap_into_place(build, self.directory)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        return len(keys)
