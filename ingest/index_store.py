"""The index directory: write it atomically, verify every checksum, then load it."""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ingest import vector_index
from ingest.chunking import Chunk, Sentence
from ingest.documents import Document
from ingest.errors import IndexCorrupt, IndexNotFound, IngestLocked, ModelMismatch
from ingest.lexical import LexicalIndex

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
DENSE_FILE = "dense.faiss"
SENTENCE_VECTORS_FILE = "sentences.faiss"
CHUNKS_FILE = "chunks.jsonl"
SENTENCES_FILE = "sentences.jsonl"
DOCUMENTS_FILE = "documents.jsonl"
LEXICAL_DIR = "lexical"
ENCODER_DIR = "encoder"
SENTENCE_LEXICAL_DIR = "lexical_sentences"
TRACKED_LIBRARIES = (
    "faiss-cpu",
    "sentence-transformers",
    "torch",
    "transformers",
    "numpy",
    "langchain-text-splitters",
    "onnx",
    "onnxruntime",
)


@dataclass(frozen=True)
class IndexContent:
    """Everything ingest hands to the writer."""

    documents: list[Document]
    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    sentences: list[Sentence]
    sentence_vectors: np.ndarray
    lexical_texts: list[str]  # what BM25 reads of each passage (its context and words as they read)
    sentence_texts: list[str]  # and of each sentence
    encoder_dir: Path | None = None  # an exported query encoder, copied in as encoder/


@dataclass(frozen=True)
class LoadedIndex:
    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    dense: Any  # faiss.Index over chunks
    sentences: list[Sentence]
    sentence_dense: Any  # faiss.Index over sentences
    lexical: LexicalIndex
    sentence_lexical: LexicalIndex
    chunk_sentences: list[list[int]]  # sentence ids inside each chunk

    @property
    def model_sha256(self) -> str:
        return str(self.manifest["model"]["sha256"])


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """A hard link where the file system allows one (a 90 MB ONNX graph in no time), else a copy.
    Index files are never written in place, only replaced by a whole new index, so sharing is safe."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# What turns files into documents, passages and sentences besides this package's own code: a new
# release of any of them may read the same file differently.
PARSING_LIBRARIES = (
    "markdown-it-py",
    "mdit-py-plugins",
    "trafilatura",
    "markdownify",
    "lxml",
    "pypdfium2",
    "pysbd",
    "bm25s",
    "PyStemmer",
)


def builder_fingerprint() -> dict[str, Any]:
    """What built an index besides its corpus and settings: a digest of the ingest package's own
    files (code and data) and the versions of the parsing libraries. An index built by other
    code may split, segment or skip the same files differently, so `--if-stale` rebuilds it
    (its embeddings come from the cache, so only changed texts are embedded again)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.is_file() and p.suffix in (".py", ".txt", ".json")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {"ingest_code_sha256": digest.hexdigest(), "libraries": library_versions(PARSING_LIBRARIES)}


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for folder in [*(p for p in directory.rglob("*") if p.is_dir()), directory]:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the call is unavailable."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)


def swap_into_place(new_dir: Path, target: Path) -> None:
    """Make `new_dir` the index at `target`; readers see the old or the new one, never a mix."""
    if not target.exists():
        os.rename(new_dir, target)
        return
    if _exchange(new_dir, target):
        shutil.rmtree(new_dir)  # now holds the old index
        return
    backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(target, backup)
    os.rename(new_dir, target)
    shutil.rmtree(backup)


@contextmanager
def ingest_lock(target: Path) -> Iterator[None]:
    """One ingest per index at a time; a second one is refused, not interleaved."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.with_name(f".{target.name}.lock")
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IngestLocked(f"another ingest is writing {target} (lock {lock_path})") from exc
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_stale_builds(target: Path) -> None:
    """Temporary folders left by an ingest that was killed: never part of an index."""
    for pattern in (f".{target.name}.tmp-*", f".{target.name}.encoder-*"):
        for leftover in target.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _artifact_files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def write_index(target: Path, content: IndexContent, manifest_fields: dict[str, Any]) -> dict[str, Any]:
    """Write every artifact into a temporary folder beside `target`, then swap it in."""
    import faiss

    if content.chunk_vectors.shape[0] != len(content.chunks):
        raise ValueError(f"{content.chunk_vectors.shape[0]} vectors for {len(content.chunks)} chunks")
    if content.sentence_vectors.shape[0] != len(content.sentences):
        raise ValueError(f"{content.sentence_vectors.shape[0]} vectors for {len(content.sentences)} sentences")
    target.parent.mkdir(parents=True, exist_ok=True)
    build_dir = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    build_dir.mkdir()
    try:
        dense_spec = vector_index.choose_spec(len(content.chunks))
        sentence_spec = vector_index.choose_spec(len(content.sentences))
        faiss.write_index(vector_index.build(content.chunk_vectors, dense_spec), str(build_dir / DENSE_FILE))
        faiss.write_index(
            vector_index.build(content.sentence_vectors, sentence_spec), str(build_dir / SENTENCE_VECTORS_FILE)
        )
        if content.encoder_dir is not None:
            shutil.copytree(content.encoder_dir, build_dir / ENCODER_DIR, copy_function=link_or_copy)
        _write_jsonl(build_dir / CHUNKS_FILE, [asdict(c) for c in content.chunks])
        _write_jsonl(build_dir / SENTENCES_FILE, [asdict(s) for s in content.sentences])
        _write_jsonl(build_dir / DOCUMENTS_FILE, [{**d.metadata(), "text": d.text} for d in content.documents])
        # Passages are searched for a top-k (impact-ordered postings); sentences only scored.
        LexicalIndex.build(content.lexical_texts).with_impact_order().save(build_dir / LEXICAL_DIR)
        LexicalIndex.build(content.sentence_texts).save(build_dir / SENTENCE_LEXICAL_DIR)
        artifacts = {
            name: {"sha256": file_sha256(build_dir / name), "bytes": (build_dir / name).stat().st_size}
            for name in _artifact_files(build_dir)
        }
        manifest = {
            "format_version": FORMAT_VERSION,
            **manifest_fields,
            "dense_index": {**dense_spec, "metric": "inner_product", "normalized": True},
            "sentence_index": {**sentence_spec, "metric": "inner_product", "normalized": True},
            "lexical_index": {
                "library": "bm25s",
                "stemmer": "snowball-english",
                "stopwords": "en",
                "impact_ordered": True,
            },
            "counts": {
                **manifest_fields.get("counts", {}),
                "chunks": len(content.chunks),
                "sentences": len(content.sentences),
                "documents": len(content.documents),
            },
            "artifacts": artifacts,
            "libraries": library_versions(),
            "built_by": builder_fingerprint(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (build_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _fsync_tree(build_dir)
        swap_into_place(build_dir, target)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    return manifest


def read_manifest(index_dir: Path) -> dict[str, Any]:
    if not index_dir.is_dir():
        raise IndexNotFound(f"index directory not found: {index_dir} (run `citeqa ingest` first)")
    path = index_dir / MANIFEST
    if not path.is_file():
        raise IndexNotFound(f"{path} is missing: not an index directory (run `citeqa ingest`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorrupt(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorrupt(f"{path}: unsupported format (expected format_version {FORMAT_VERSION})")
    return manifest


def verify_index(
    index_dir: Path, model_sha256: str | None = None, verified_manifest_sha256: str | None = None
) -> dict[str, Any]:
    """Check the manifest, every artifact's size and sha256, and the model it was built with.
    With `verified_manifest_sha256` (what `verify_index` of the same manifest returned via
    `file_sha256` in a parent process, moments before), artifacts are checked by size only:
    server workers do not hash a large index once each."""
    manifest = read_manifest(index_dir)
    trusted = verified_manifest_sha256 is not None and file_sha256(index_dir / MANIFEST) == verified_manifest_sha256
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        raise IndexCorrupt(f"{index_dir / MANIFEST}: lists no artifacts")
    for name, expected in artifacts.items():
        path = index_dir / name
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or not parts or not path.is_file():
            raise IndexCorrupt(f"{path}: artifact missing")
        if path.stat().st_size != expected.get("bytes"):
            raise IndexCorrupt(f"{path}: size {path.stat().st_size} bytes, manifest says {expected.get('bytes')}")
        if not trusted and file_sha256(path) != expected.get("sha256"):
            raise IndexCorrupt(f"{path}: sha256 does not match the manifest (file edited or damaged)")
    if model_sha256 is not None and manifest.get("model", {}).get("sha256") != model_sha256:
        raise ModelMismatch(
            f"index {index_dir} was built with model weights sha256 "
            f"{str(manifest.get('model', {}).get('sha256'))[:12]}…, but the model in use has {model_sha256[:12]}…"
        )
    return manifest


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise IndexCorrupt(f"{path}:{number}: not valid JSON") from exc
            if not isinstance(row, dict):
                raise IndexCorrupt(f"{path}:{number}: expected a JSON object")
            rows.append(row)
    return rows


def _chunk_sentence_ids(chunks: list[Chunk], sentences: list[Sentence]) -> list[list[int]]:
    """Ids (ascending) of the sentences lying inside each chunk. Each document's sentences are
    sorted by start once and each chunk bisects to its first one, so the cost is about the
    sentences found, not chunks × sentences of a document."""
    by_doc: dict[str, list[tuple[int, int, int]]] = {}
    for number, sentence in enumerate(sentences):
        by_doc.setdefault(sentence.doc_id, []).append((sentence.start, sentence.end, number))
    starts: dict[str, list[int]] = {}
    for doc_id, spans in by_doc.items():
        spans.sort()
        starts[doc_id] = [start for start, _, _ in spans]
    result = []
    for chunk in chunks:
        spans = by_doc.get(chunk.doc_id, [])
        first = bisect.bisect_left(starts.get(chunk.doc_id, []), chunk.start)
        inside = []
        for position in range(first, len(spans)):  # islice would walk from the list's start
            start, end, number = spans[position]
            if start > chunk.end:  # an empty sentence may sit at the very end
                break
            if end <= chunk.end:
                inside.append(number)
        result.append(sorted(inside))
    return result


# How each dense index type is read memory-mapped, so that server processes share its pages
# (measured: a flat index needs IO_FLAG_MMAP_IFC, IVF lists IO_FLAG_MMAP; HNSW is read in).
MMAP_FLAGS = {"flat": "IO_FLAG_MMAP_IFC", "ivf_sq8": "IO_FLAG_MMAP", "ivf_pq": "IO_FLAG_MMAP"}


def _read_dense(path: Path, spec: dict[str, Any]) -> Any:
    import faiss

    flag = MMAP_FLAGS.get(spec.get("type", "flat"))
    index = faiss.read_index(str(path), getattr(faiss, flag) if flag else 0)
    return vector_index.configure(index, spec)


def load_index(
    index_dir: Path, model_sha256: str | None = None, verified_manifest_sha256: str | None = None
) -> LoadedIndex:
    """Verify first, then read: nothing is parsed from a file whose checksum is wrong. Vectors
    and BM25 arrays are memory-mapped, shared by every process that serves the index."""
    manifest = verify_index(index_dir, model_sha256, verified_manifest_sha256)
    try:
        documents = {row["doc_id"]: Document(**row) for row in _read_jsonl(index_dir / DOCUMENTS_FILE)}
        chunks = [Chunk(**row) for row in _read_jsonl(index_dir / CHUNKS_FILE)]
        sentences = [Sentence(**row) for row in _read_jsonl(index_dir / SENTENCES_FILE)]
    except (KeyError, TypeError) as exc:
        raise IndexCorrupt(f"{index_dir}: chunk or document record has the wrong fields ({exc})") from exc
    for chunk in chunks:
        document = documents.get(chunk.doc_id)
        if document is None or document.text[chunk.start : chunk.end] != chunk.text:
            raise IndexCorrupt(f"{index_dir / CHUNKS_FILE}: chunk {chunk.chunk_id} does not match its document span")
    dimension = manifest.get("model", {}).get("dimension")
    dense = _read_dense(index_dir / DENSE_FILE, manifest.get("dense_index", {}))
    if dense.ntotal != len(chunks) or dense.d != dimension:
        raise IndexCorrupt(f"{index_dir / DENSE_FILE}: {dense.ntotal}×{dense.d} vectors for {len(chunks)} chunks")
    sentence_dense = _read_dense(index_dir / SENTENCE_VECTORS_FILE, manifest.get("sentence_index", {}))
    if sentence_dense.ntotal != len(sentences) or sentence_dense.d != dimension:
        raise IndexCorrupt(f"{index_dir / SENTENCE_VECTORS_FILE}: wrong shape for {len(sentences)} sentences")
    lexical = LexicalIndex.load(index_dir / LEXICAL_DIR)
    sentence_lexical = LexicalIndex.load(index_dir / SENTENCE_LEXICAL_DIR)
    if lexical.size != len(chunks) or sentence_lexical.size != len(sentences):
        raise IndexCorrupt(f"{index_dir}: lexical index sizes do not match the chunk and sentence stores")
    return LoadedIndex(
        index_dir,
        manifest,
        documents,
        chunks,
        dense,
        sentences,
        sentence_dense,
        lexical,
        sentence_lexical,
        _chunk_sentence_ids(chunks, sentences),
    )
