"""The ingest pipeline in one place: load → parse → chunk → embed → write."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingest.calibration import calibrate
from ingest.chunking import Chunk, ChunkerSettings, Sentence
from ingest.documents import Corpus, Document, assemble_corpus, corpus_hash, document_sources, load_corpus
from ingest.embedding import Embedder
from ingest.embedding_cache import CacheIdentity, EmbeddingCache, cache_dir
from ingest.engines import Engine, LocalEngine
from ingest.engines import Progress as Progress
from ingest.errors import CiteqaError
from ingest.index_store import (
    IndexContent,
    builder_fingerprint,
    ingest_lock,
    remove_stale_builds,
    verify_index,
    write_index,
)
from ingest.stages import chunks_from, document_from_dict
from ingest.structure import chrome_keys

EncoderExport = Callable[[Path], dict[str, Any]]  # writes a query encoder into a folder


@dataclass(frozen=True)
class RetrievalSettings:
    """How the service ranks; chosen on the evaluation set (`citeqa eval --tune`), stored in the manifest."""

    dense_weight: float = 0.5
    sentence_weight: float = 0.4
    lexical_weight: float = 0.12
    answerable_threshold: float = 0.24  # replaced at ingest by the index's own calibration
    # The answer sentence: its cosine plus this much of its share of the passage's best sentence
    # BM25 (apart from the fusion's BM25 weight, which tuning the fusion moves).
    answer_lexical_weight: float = 0.12


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
    """True when the index verifies and was built from this corpus, with these settings and model,
    by this ingest code and parsing libraries, and (when it has one) holds the query encoder this
    code would export: an index from before the int8 query encoder, or from a release that
    parses differently, is rebuilt, with its embeddings from the cache."""
    try:
        manifest = verify_index(index_dir, model_sha256)
        if manifest.get("built_by") != builder_fingerprint():
            return False
        if settings.onnx_encoder:
            from ingest.onnx_model import exported_encoder_entry

            if manifest.get("query_encoder") != exported_encoder_entry():
                return False
        return bool(
            manifest.get("corpus", {}).get("hash") == corpus_hash(load_corpus(corpus_dir))
            and manifest.get("ingest") == settings.as_dict()
        )
    except CiteqaError:
        return False


def _embed_with_cache(
    engine: Engine,
    identity: CacheIdentity,
    passages: list[str],
    sentences: list[str],
    index_dir: Path,
    progress: Progress,
) -> tuple[Any, Any, int, int]:
    """Embed (with whichever engine) only the texts that the cache beside the index lacks; the cache
    then holds exactly this build's texts. Returns both matrices, and how many distinct texts were
    embedded and reused."""
    cache = EmbeddingCache.open(cache_dir(index_dir), identity)
    # One call for passages and sentences: a Ray engine then starts its actors (and loads the model) once.
    missing = cache.missing(passages + sentences)
    cache.add(missing, engine.embed(missing, "embed", progress))
    used = cache.save(passages + sentences)
    return cache.vectors(passages), cache.vectors(sentences), cache.added, used - cache.added


def _parse_corpus(
    engine: Engine, corpus_dir: Path, progress: Progress
) -> tuple[Corpus, list[dict[str, Any]], list[str]]:
    """Read and parse every file where the engine runs; the corpus-wide chrome rule is decided here."""
    paths, skipped = document_sources(corpus_dir)
    progress("parse", 0, len(paths))
    parsed = engine.parse(paths, corpus_dir)
    loaded = [document_from_dict(p["document"]) if "document" in p else p["skipped"] for p in parsed]
    corpus = assemble_corpus(corpus_dir, loaded, skipped)
    readable = [p for p in parsed if "document" in p]
    chrome = sorted(chrome_keys([p["spans"] for p in readable]))
    progress("parse", len(paths), len(paths))
    return corpus, [p["document"] for p in readable], chrome


def build_index(
    corpus_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: IngestSettings | None = None,
    progress: Progress = _no_progress,
    retrieval: RetrievalSettings | None = None,
    export_encoder: EncoderExport | None = None,
    engine: Engine | None = None,
    live: Callable[[list[Document]], dict[str, Any]] | None = None,
) -> IngestSummary:
    """Parse, chunk and embed where `engine` runs them (here by default), then write the index
    here: one writer, one lock, one atomic swap, whichever engine produced the vectors. `embedder`
    is the driver's: the cache's identity, the calibration questions, and the local engine's model.
    `live` gives the manifest's `live` record from the documents (ingest.updates), so that the
    record of which updates an index holds is swapped in with the index itself."""
    settings = settings or IngestSettings()
    engine = engine or LocalEngine(embedder)
    started = time.perf_counter()
    with ingest_lock(index_dir):
        remove_stale_builds(index_dir)
        corpus, parsed_documents, chrome = _parse_corpus(engine, corpus_dir, progress)
        documents = corpus.documents
        pieces = engine.chunk(parsed_documents, settings.as_dict(), chrome)
        chunks: list[Chunk] = []
        sentences: list[Sentence] = []
        chunk_texts: list[str] = []
        sentence_texts: list[str] = []
        for piece in pieces:
            doc_chunks, doc_sentences = chunks_from(piece)
            chunks.extend(doc_chunks)
            sentences.extend(doc_sentences)
            chunk_texts.extend(piece["chunk_texts"])
            sentence_texts.extend(piece["sentence_texts"])
        blocks = sum(piece["blocks"] for piece in pieces)
        duplicates = sum(piece["duplicates"] for piece in pieces)
        with tempfile.TemporaryDirectory(prefix=f".{index_dir.name}.encoder-", dir=index_dir.parent) as scratch:
            # The encoder first: an embedder that exports it (OnnxDocumentEmbedder) embeds the documents with it.
            encoder: dict[str, Any] = {"backend": "model"}
            encoder_dir = None
            if export_encoder is not None:
                progress("export encoder", 0, 1)
                encoder_dir = Path(scratch) / "encoder"
                encoder = {"backend": "onnx", "dir": "encoder", **export_encoder(encoder_dir)}
                progress("export encoder", 1, 1)
            engine.start(encoder_dir)
            chunk_vectors, sentence_vectors, embedded, cached = _embed_with_cache(
                engine, CacheIdentity.of(embedder), chunk_texts, sentence_texts, index_dir, progress
            )
            calibration = calibrate(embedder, chunk_vectors, sentence_vectors, chunk_texts, [c.section for c in chunks])
            if retrieval is None:
                retrieval = RetrievalSettings(answerable_threshold=calibration["threshold"])
            digest = corpus_hash(documents)
            content = IndexContent(
                documents, chunks, chunk_vectors, sentences, sentence_vectors, chunk_texts, sentence_texts, encoder_dir
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
                "engine": {"name": engine.name, **engine.cluster()},
            }
            if live is not None:
                manifest_fields["live"] = live(documents)
            write_index(index_dir, content, manifest_fields)
    seconds = time.perf_counter() - started
    return IngestSummary(len(documents), blocks, len(chunks), duplicates, seconds, digest, embedded, cached)
