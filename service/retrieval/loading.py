"""Loading: the verified index and the query encoder it was built with."""

from __future__ import annotations

from pathlib import Path

from ingest.embedding import Embedder, SentenceTransformerEmbedder, verify_model
from ingest.errors import INGEST_EXTRA, IndexCorrupt, MissingExtra
from ingest.index_store import LoadedIndex, load_index, verify_index


def _needs_model(index_dir: Path) -> MissingExtra:
    return MissingExtra(
        f"index {index_dir} has no ONNX query encoder, so serving it needs the embedding model: "
        f"{INGEST_EXTRA}, or ingest again without --no-onnx"
    )


def verify_serving(index_dir: Path, model_dir: Path | None, expected_model_sha256: str) -> None:
    """Cheap checks before anything heavy is imported: model weights (when a model folder is
    installed or configured) and every artifact, the ONNX query encoder included."""
    model_sha = verify_model(model_dir, expected_model_sha256) if model_dir is not None else expected_model_sha256
    manifest = verify_index(index_dir, model_sha)
    if model_dir is None and manifest.get("query_encoder", {}).get("backend") != "onnx":
        raise _needs_model(index_dir)


def load_serving(
    index_dir: Path,
    model_dir: Path | None,
    expected_model_sha256: str,
    encoder_threads: int = 2,
    batch_queries: bool = False,
    batch_encoder_threads: int = 1,
    verified_manifest_sha256: str | None = None,
) -> tuple[LoadedIndex, Embedder]:
    """The index, verified, with the query encoder it was built with: the exported ONNX model
    when there is one (no torch import, no model folder needed), else the sentence-transformers
    model from `model_dir`. With `verified_manifest_sha256`, a parent process has just run
    `verify_serving` on this index."""
    if model_dir is not None and verified_manifest_sha256 is None:
        verify_model(model_dir, expected_model_sha256)
    # Verifies every artifact before reading any (by size alone when the parent hashed them).
    index = load_index(index_dir, expected_model_sha256, verified_manifest_sha256)
    encoder = index.manifest.get("query_encoder", {})
    embedder: Embedder
    if encoder.get("backend") == "onnx":
        from ingest.onnx_model import MODEL_FILE, BatchingEmbedder, OnnxEmbedder

        # Indexes from before the int8 query encoder name no query_file: they serve the float32 model.
        folder, query_file = index_dir / encoder["dir"], str(encoder.get("query_file", MODEL_FILE))
        if f"{encoder['dir']}/{query_file}" not in index.manifest.get("artifacts", {}):
            raise IndexCorrupt(f"{index_dir}: the query encoder {query_file!r} is not a checksummed file of the index")
        if batch_queries:
            # Queued queries are encoded while requests are in flight, every core busy with them:
            # one thread (at 16 clients on 2 cores, 557 against 476 req/s with two, interleaved
            # rounds, measured when queued queries were still padded into one batch).
            # A lone query gets `encoder_threads`, spinning, for the latency of one client.
            onnx = OnnxEmbedder(folder, index.model_sha256, batch_encoder_threads, query_file)
            lone = OnnxEmbedder(folder, index.model_sha256, encoder_threads, query_file, cache_size=0, spin=True)
            embedder = BatchingEmbedder(onnx, lone)
        else:
            embedder = OnnxEmbedder(folder, index.model_sha256, encoder_threads, query_file)
    else:
        if model_dir is None:
            raise _needs_model(index_dir)
        embedder = SentenceTransformerEmbedder(model_dir, expected_model_sha256)
    return index, embedder
