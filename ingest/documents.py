"""Load the corpus: documents with their sidecar metadata, and a stable corpus hash."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import CorpusError

DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    source: str
    text: str
    publisher: str | None = None
    language: str | None = None
    year: int | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def metadata(self) -> dict[str, object]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "source": self.source,
            "publisher": self.publisher,
            "language": self.language,
            "year": self.year,
        }


def _read_metadata(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"{path}: unreadable metadata ({exc})") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: metadata must be a JSON object")
    return data


def _optional_str(meta: dict[str, object], key: str, path: Path) -> str | None:
    value = meta.get(key)
    if value is not None and not isinstance(value, str):
        raise CorpusError(f"{path}: '{key}' must be a string")
    return value


def load_document(path: Path, corpus_dir: Path) -> Document:
    """Read one text file and its `<stem>.meta.json` sidecar (optional)."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    # NFC so that offsets mean the same thing to every reader of the stored text.
    text = unicodedata.normalize("NFC", text.removeprefix("\ufeff"))
    if not text.strip():
        raise CorpusError(f"{path}: document is empty")
    meta_path = path.with_name(path.stem + ".meta.json")
    meta = _read_metadata(meta_path) if meta_path.exists() else {}
    doc_id = meta.get("doc_id", path.stem)
    if not isinstance(doc_id, str) or not DOC_ID_PATTERN.match(doc_id):
        raise CorpusError(f"{meta_path}: doc_id must match {DOC_ID_PATTERN.pattern}")
    title = _optional_str(meta, "title", meta_path) or path.stem
    year = meta.get("year")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
        raise CorpusError(f"{meta_path}: 'year' must be an integer")
    return Document(
        doc_id=doc_id,
        title=title,
        source=_optional_str(meta, "source", meta_path) or path.relative_to(corpus_dir).as_posix(),
        text=text,
        publisher=_optional_str(meta, "publisher", meta_path),
        language=_optional_str(meta, "language", meta_path),
        year=year,
    )


def load_corpus(corpus_dir: Path) -> list[Document]:
    """Every text document under `corpus_dir`, sorted by path so ingest is deterministic."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    paths = sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
    if not paths:
        raise CorpusError(f"no .txt or .md documents in {corpus_dir}")
    documents = [load_document(p, corpus_dir) for p in paths]
    seen: dict[str, str] = {}
    for doc in documents:
        if doc.doc_id in seen:
            raise CorpusError(f"duplicate doc_id '{doc.doc_id}' in {seen[doc.doc_id]} and {doc.source}")
        seen[doc.doc_id] = doc.source
    return documents


def corpus_hash(documents: list[Document]) -> str:
    """A hash of every document's id, metadata and text: equal corpora hash equal."""
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.doc_id):
        digest.update(json.dumps(doc.metadata(), sort_keys=True).encode("utf-8"))
        digest.update(doc.sha256.encode("ascii"))
    return digest.hexdigest()
