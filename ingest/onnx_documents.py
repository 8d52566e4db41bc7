"""Document embeddings at ingest from the ONNX export of the model, the graph that serves queries."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding import MODEL_NAME, MODEL_SHA256, verify_model
from ingest.errors import CiteqaError, ModelMismatch
from ingest.index_store import ENCODER_DIR, file_sha256, library_versions, link_or_copy, read_manifest
from ingest.onnx_model import (
    CONFIG_FILE,
    MODEL_FILE,
    QUERY_FILE,
    TOKENIZER_FILE,
    EncoderSource,
    OnnxEmbedder,
    encoder_config,
    encoder_file,
    export_onnx,
    exported_encoder_entry,
)

# Padded tokens per run: one passage of 256 word pieces, or about ten short sentences. Small runs
# stay in the CPU's caches: on pip-docs (2 cores, interleaved runs) 256 gave 51 passages/s and
# 333 sentences/s, 512 gave 48 and 310, 8,192 gave 36 and 220; 128 was slower for sentences (300).
BATCH_TOKENS = 256
MAX_BATCH = 64
DOCUMENT_ENCODER_FILES = (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE)  # what `load` reads (not the int8 copy)
# What the exported graphs depend on besides the weights: the tracer, and the quantiser of the int8 copy.
EXPORTER_LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def length_buckets(lengths: np.ndarray, batch_tokens: int, max_batch: int) -> Iterator[np.ndarray]:
    """Indices of texts in batches of similar token length (shortest first), each at most
    `batch_tokens` once padded to its longest text, so little work is spent on padding."""
    order = np.argsort(lengths, kind="stable")
    begin = 0
    for end in range(1, len(order) + 1):
        longest = int(lengths[order[end - 1]])
        if end - begin > 1 and ((end - begin) * longest > batch_tokens or end - begin > max_batch):
            yield order[begin : end - 1]
            begin = end - 1
    if begin < len(order):
        yield order[begin:]


def copy_reusable_encoder(index_dir: Path, model_dir: Path, weights_sha256: str, folder: Path) -> bool:
    """Copy the encoder of an existing index into `folder` when exporting again would write the
    same files: same weights and tokenizer, same encoder config (opset included), same torch and
    transformers, and each copied file's size and sha256 as that index's manifest lists them."""
    try:
        manifest = read_manifest(index_dir)
    except CiteqaError:
        return False
    artifacts = manifest.get("artifacts")
    if manifest.get("query_encoder") != exported_encoder_entry():
        return False
    if manifest.get("model", {}).get("sha256") != weights_sha256 or not isinstance(artifacts, dict):
        return False
    current = library_versions()
    if any(manifest.get("libraries", {}).get(name) != current.get(name) for name in EXPORTER_LIBRARIES):
        return False
    names = (MODEL_FILE, QUERY_FILE, TOKENIZER_FILE, CONFIG_FILE)
    if {a for a in artifacts if a.startswith(f"{ENCODER_DIR}/")} != {f"{ENCODER_DIR}/{n}" for n in names}:
        return False
    if not _matches(model_dir / TOKENIZER_FILE, artifacts[f"{ENCODER_DIR}/{TOKENIZER_FILE}"]):
        return False
    folder.mkdir(parents=True)
    for name in names:  # copy, then check the copies: what is checked is what gets used
        source = index_dir / ENCODER_DIR / name
        if source.is_file():
            link_or_copy(source, folder / name)
        if not _matches(folder / name, artifacts[f"{ENCODER_DIR}/{name}"]):
            shutil.rmtree(folder)
            return False
    return True


def _matches(path: Path, entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and path.is_file()
        and path.stat().st_size == entry.get("bytes")
        and file_sha256(path) == entry.get("sha256")
    )


class OnnxDocumentEmbedder:
    """all-MiniLM-L6-v2 through ONNX Runtime on every core, for ingest. The weights are verified
    as for the PyTorch embedder; `export` writes the ONNX encoder (ingest puts it in the index as
    encoder/, where queries are served from) and documents are then embedded with that file."""

    name = MODEL_NAME

    def __init__(
        self,
        model_dir: Path,
        expected_sha256: str = MODEL_SHA256,
        threads: int | None = None,
        batch_tokens: int = BATCH_TOKENS,
    ) -> None:
        self.weights_sha256 = verify_model(model_dir, expected_sha256)
        self._model_dir = model_dir
        self._expected_sha256 = expected_sha256
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        self.dimension = int(config["hidden_size"])
        self._threads = threads or available_cores()
        self._batch_tokens = batch_tokens
        self._encoder: OnnxEmbedder | None = None
        self._tokenizer: Any = None
        self.reused_from: Path | None = None  # the index whose encoder the last export copied

    def export(self, folder: Path, reuse_from: Path | None = None) -> dict[str, Any]:
        """Export the verified weights into `folder`, then embed with the exported model. When the
        index `reuse_from` holds an encoder that exporting would reproduce, copy it instead: a
        re-ingest then neither imports torch nor spends seconds tracing the model."""
        verify_model(self._model_dir, self._expected_sha256)  # the file exported is the file verified
        reused = reuse_from is not None and copy_reusable_encoder(
            reuse_from, self._model_dir, self.weights_sha256, folder
        )
        config = encoder_config() if reused else export_onnx(self._model_dir, folder)
        self.reused_from = reuse_from if reused else None
        self.load(folder)
        return config

    def load(self, source: EncoderSource) -> None:
        """Embed with an encoder already exported from these weights: its folder, or its files."""
        from tokenizers import Tokenizer

        encoder = OnnxEmbedder(source, self.weights_sha256, threads=self._threads, cache_size=0)
        if encoder.dimension != self.dimension:
            where = source if isinstance(source, Path) else "the encoder sent"
            raise ModelMismatch(f"{where}: encoder gives {encoder.dimension} dimensions, the model {self.dimension}")
        config = json.loads(encoder_file(source, CONFIG_FILE))
        tokenizer = Tokenizer.from_str(encoder_file(source, TOKENIZER_FILE).decode("utf-8"))
        tokenizer.enable_truncation(max_length=int(config["max_length"]))
        tokenizer.no_padding()  # each bucket is padded to its own longest text below
        self._encoder, self._tokenizer = encoder, tokenizer

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            raise RuntimeError("OnnxDocumentEmbedder: export() or load() the encoder before embedding")
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        tokens = [encoding.ids for encoding in self._tokenizer.encode_batch(texts)]
        lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        for bucket in length_buckets(lengths, self._batch_tokens, MAX_BATCH):
            ids = np.zeros((len(bucket), int(lengths[bucket].max())), dtype=np.int64)
            for row, number in enumerate(bucket):
                ids[row, : lengths[number]] = tokens[number]
            mask = (np.arange(ids.shape[1]) < lengths[bucket][:, None]).astype(np.int64)
            vectors[bucket] = self._encoder.encode_tokens(ids, mask)
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector
