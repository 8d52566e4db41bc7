"""The ingest pipeline in one place: load → parse → chunk → embed → write."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingest.calibration import calibrate
from ingest.chunking import Chunk, ChunkerSettings, Sentence, chunk_document_with_sentences
from ingest.documents import Document, corpus_hash, load_corpus, read_corpus
from ingest.embedding import Embedder, with_context
from ingest.embedding_cache import CacheIdentity, EmbeddingCache, cache_dir
from ingest.errors import CiteqaError
from ingest.index_store import IndexContent, ingest_lock, remove_stale_builds, verify_index, write_index
from ingest.structure import chrome_keys, typed_spans

Progress = Callable[[str, int, int], None]
EncoderExport = Callable[[Path], dict[str, Any]]  # writes a query encoder into a folder
EMBED_SLICE = 256  # texts handed to the embedder at once, between progress reports


@dataclass(frozen=True)
class RetrievalSettings:
    """How the service ranks; chosen on the evaluation set (`citeqa eval --tune`), stored in the manifest."""

    dense_weight: float = 0.5
    sentence_weight: float = 0.4
    lexical_weight: float = 0.1
    answerable_threshold: float = 0.24  # replaced at ingest by the index's own calibration


@dataclass(frozen=True)
class IngestSettings:
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    embed_context: bool = True
    onnx_encoder: bool = False  # whether a query encoder is exported (the CLI's default: yes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chunker": self.chunker.as_dict(),
            "embed_context": self.embed_context,
            "onnx_encoder": self.onnx_encoder,
        }


@dataclass(frozen=True)
class IngestSummary:
    documents: int
    blocks: int
    chunks: int
    duplicates_skipped: int
    seconds: float
    corpus_hash: str
    texts_embedded: int = 0  # distinct passage and sentence texts embedded by this run
    texts_cached: int = 0  # distinct texts whose vectors came from the embedding cache


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


def corpus_chrome(documents: list[Document]) -> frozenset[str]:
    """Blocks that recur across many documents of this corpus (navigation, footers)."""
    return chrome_keys([[t.span.text for t in typed_spans(d.text, d.segments)] for d in documents])


def _embed_in_batches(embedder: Embedder, texts: list[str], stage: str, progress: Progress) -> Any:
    import numpy as np

    # Slices of texts of similar length: an embedder pads each of its batches to the longest text.
    order = sorted(range(len(texts)), key=lambda number: len(texts[number]))
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for begin in range(0, len(texts), EMBED_SLICE):
        part = order[begin : begin + EMBED_SLICE]
        vectors[part] = embedder.embed_documents([texts[number] for number in part])
        progress(stage, min(begin + EMBED_SLICE, len(texts)), len(texts))
    return vectors


def _embed_with_cache(
    embedder: Embedder, passages: list[str], sentences: list[str], index_dir: Path, progress: Progress
) -> tuple[Any, Any, int, int]:
    """Embed only the texts that the cache beside the index lacks; the cache then holds exactly
    this build's texts. Returns both matrices, and how many distinct texts were embedded and reused."""
    cache = EmbeddingCache.open(cache_dir(index_dir), CacheIdentity.of(embedder))
    for texts, stage in ((passages, "embed passages"), (sentences, "embed sentences")):
        missing = cache.missing(texts)
        cache.add(missing, _embed_in_batches(embedder, missing, stage, progress))
    used = cache.save(passages + sentences)
    return cache.vectors(passages), cache.vectors(sentences), cache.added, used - cache.added


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: IngestSettings | None = None,
    progress: Progress = _no_progress,
    retrieval: RetrievalSettings | None = None,
    export_encoder: EncoderExport | None = None,
) -> IngestSummary:
    settings = settings or IngestSettings()
    started = time.perf_counter()
    with ingest_lock(index_dir):
        remove_stale_builds(index_dir)
        corpus = read_corpus(corpus_dir)
        documents = corpus.documents
        chrome = corpus_chrome(documents)
        chunks: list[Chunk] = []
        sentences: list[Sentence] = []
        chunk_texts: list[str] = []
        sentence_texts: list[str] = []
        blocks = duplicates = 0
        for number, document in enumerate(documents, 1):
            doc_blocks, doc_chunks, doc_sentences = chunk_document_with_sentences(document, settings.chunker, chrome)
            blocks += len(doc_blocks)
            duplicates += sum(1 for b in doc_blocks if b.duplicate_of is not None)
            chunks.extend(doc_chunks)
            sentences.extend(doc_sentences)
            chunk_texts.extend(
                with_context(c.text, document, c.section, c.speaker) if settings.embed_context else c.text
                for c in doc_chunks
            )
            sentence_texts.extend(document.text[s.start : s.end] for s in doc_sentences)
            progress("parse", number, len(documents))
        with tempfile.TemporaryDirectory(prefix=f".{index_dir.name}.encoder-", dir=index_dir.parent) as scratch:
            # The encoder first: an embedder that exports it (OnnxDocumentEmbedder) embeds the documents with it.
            encoder: dict[str, Any] = {"backend": "model"}
            encoder_dir = None
            if export_encoder is not None:
                progress("export encoder", 0, 1)
                encoder_dir = Path(scratch) / "encoder"
                encoder = {"backend": "onnx", "dir": "encoder", **export_encoder(encoder_dir)}
                progress("export encoder", 1, 1)
            chunk_vectors, sentence_vectors, embedded, cached = _embed_with_cache(
                embedder, chunk_texts, sentence_texts, index_dir, progress
            )
            calibration = calibrate(embedder, chunk_vectors, sentence_vectors, chunk_texts)
            if retrieval is None:
                retrieval = RetrievalSettings(answerable_threshold=calibration["threshold"])
            digest = corpus_hash(documents)
            content = IndexContent(
                documents, chunks, chunk_vectors, sentences, sentence_vectors, chunk_texts, encoder_dir
            )
            manifest_fields = {
                "model": {
                    "name": embedder.name,
                    "sha256": embedder.weights_sha256,
                    "dimension": embedder.dimension,
                    "normalized": True,
                },
                "ingest": settings.as_dict(),
                "retrieval": asdict(retrieval),
                "calibration": calibration,
                "query_encoder": encoder,
                "corpus": {
                    "hash": digest,
                    "documents": [d.metadata() for d in documents],
                    "skipped": corpus.skipped,
                },
                "counts": {"blocks": blocks, "duplicate_blocks_skipped": duplicates},
            }
            write_index(index_dir, content, manifest_fields)
    seconds = time.perf_counter() - started
    return IngestSummary(len(documents), blocks, len(chunks), duplicates, seconds, digest, embedded, cached)
