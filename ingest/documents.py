"""Load the corpus: documents with their sidecar metadata, and a stable corpus hash."""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import CorpusError, MetadataError
from ingest.readers import READERS, Parsed, Segment, read_file

DOC_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    source: str
    text: str
    publisher: str | None = None
    language: str | None = None
    year: int | None = None
    format: str = "text"
    pages: tuple[int, ...] = ()  # offset where each page starts, for formats with pages
    segments: list[Segment] | None = field(default=None, compare=False, repr=False)  # parsing only, not stored
    # Where the typesetter hyphenated a word at a line's end (PDF): parsing only, not stored.
    soft_hyphens: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", tuple(self.pages))
        object.__setattr__(self, "soft_hyphens", tuple(self.soft_hyphens))

    def page_span(self, start: int, end: int) -> tuple[int, int] | None:
        """First and last page (1-based) of text[start:end], for paged documents."""
        if not self.pages:
            return None
        first = bisect.bisect_right(self.pages, start)
        last = bisect.bisect_right(self.pages, max(start, end - 1))
        return first, last

    def reading(self, start: int, end: int) -> str:
        """text[start:end] as it reads: a word the typesetter hyphenated at a line's end is one
        word again ('reintro-\\nducing' reads 'reintroducing'). What is embedded and searched;
        citations keep the text as printed."""
        first = bisect.bisect_left(self.soft_hyphens, start)
        last = bisect.bisect_left(self.soft_hyphens, end)
        if first == last:
            return self.text[start:end]
        parts = []
        position = start
        for hyphen in self.soft_hyphens[first:last]:
            parts.append(self.text[position:hyphen])
            position = hyphen + 1
            while position < end and self.text[position].isspace():
                position += 1
        parts.append(self.text[position:end])
        return "".join(parts)

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
            "format": self.format,
            "pages": list(self.pages),
        }


def _read_metadata(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"{path}: unreadable metadata ({exc})") from exc
    if not isinstance(data, dict):
        raise MetadataError(f"{path}: metadata must be a JSON object")
    return data


def _optional_str(meta: dict[str, object], key: str, path: Path) -> str | None:
    value = meta.get(key)
    if value is not None and not isinstance(value, str):
        raise MetadataError(f"{path}: '{key}' must be a string")
    return value


def load_document(path: Path, corpus_dir: Path) -> Document:
    """Read one file through its format's reader, with its `<stem>.meta.json` sidecar (optional)."""
    parsed: Parsed = read_file(path)
    meta_path = path.with_name(path.stem + ".meta.json")
    meta = _read_metadata(meta_path) if meta_path.exists() else {}
    doc_id = meta.get("doc_id", _default_id(path, corpus_dir))
    if not isinstance(doc_id, str) or not DOC_ID_PATTERN.match(doc_id):
        raise MetadataError(f"{meta_path}: doc_id must match {DOC_ID_PATTERN.pattern}")
    title = _optional_str(meta, "title", meta_path) or (parsed.title or "").strip() or path.stem
    year = meta.get("year")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool)):
        raise MetadataError(f"{meta_path}: 'year' must be an integer")
    return Document(
        doc_id=doc_id,
        title=title,
        source=_optional_str(meta, "source", meta_path) or path.relative_to(corpus_dir).as_posix(),
        text=parsed.text,
        publisher=_optional_str(meta, "publisher", meta_path),
        language=_optional_str(meta, "language", meta_path),
        year=year,
        format=parsed.fmt,
        pages=parsed.pages,
        segments=parsed.segments,
        soft_hyphens=parsed.soft_hyphens,
    )


def _default_id(path: Path, corpus_dir: Path) -> str:
    """The path below the corpus folder without its suffix ('topics/caching'), made id-safe."""
    relative = path.relative_to(corpus_dir).with_suffix("").as_posix()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", relative).strip("-.") or "document"
    return cleaned[:128]


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    skipped: list[dict[str, str]]  # {"source", "reason"} for every file that was not indexed


def corpus_files(corpus_dir: Path) -> list[Path]:
    return sorted(p for p in corpus_dir.rglob("*") if p.is_file() and not p.name.startswith("."))


def document_sources(corpus_dir: Path) -> tuple[list[Path], list[dict[str, str]]]:
    """The files to read, sorted by path, and the files skipped for their type (with the reason)."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    paths: list[Path] = []
    skipped: list[dict[str, str]] = []
    for path in corpus_files(corpus_dir):
        if path.name.endswith(".meta.json"):
            continue
        if path.suffix.lower() not in READERS:
            source = path.relative_to(corpus_dir).as_posix()
            skipped.append({"source": source, "reason": f"unsupported file type '{path.suffix}'"})
            continue
        paths.append(path)
    return paths, skipped


def load_or_skip(path: Path, corpus_dir: Path) -> Document | dict[str, str]:
    """One document, or {"source", "reason"} when its file cannot be read. Wrong metadata of the
    user's own is raised, not skipped."""
    try:
        return load_document(path, corpus_dir)
    except MetadataError:
        raise
    except CorpusError as exc:
        return {"source": path.relative_to(corpus_dir).as_posix(), "reason": str(exc).removeprefix(f"{path}: ")}


def assemble_corpus(corpus_dir: Path, loaded: list[Document | dict[str, str]], skipped: list[dict[str, str]]) -> Corpus:
    """The corpus from every file's outcome, in path order: refused when nothing was readable or
    two documents share an id."""
    documents = [item for item in loaded if isinstance(item, Document)]
    unreadable = [item for item in loaded if isinstance(item, dict)]
    skipped = sorted([*skipped, *unreadable], key=lambda e: Path(e["source"]))  # path order, as read
    if not documents:
        reasons = "; ".join(f"{e['source']}: {e['reason']}" for e in skipped[:3])
        formats = ", ".join(sorted(READERS))
        raise CorpusError(f"no readable documents in {corpus_dir} ({formats})" + (f": {reasons}" if reasons else ""))
    seen: dict[str, str] = {}
    for doc in documents:
        if doc.doc_id in seen:
            raise CorpusError(f"duplicate doc_id '{doc.doc_id}' in {seen[doc.doc_id]} and {doc.source}")
        seen[doc.doc_id] = doc.source
    return Corpus(documents, skipped)


def read_corpus(corpus_dir: Path) -> Corpus:
    """Every readable document under `corpus_dir`, sorted by path so ingest is deterministic.
    A file that cannot be read is skipped whole, named with its reason (logged and recorded in
    the manifest), never half-indexed; a file of an unknown type is skipped the same way."""
    paths, skipped = document_sources(corpus_dir)
    return assemble_corpus(corpus_dir, [load_or_skip(path, corpus_dir) for path in paths], skipped)


def load_corpus(corpus_dir: Path) -> list[Document]:
    return read_corpus(corpus_dir).documents


def corpus_hash(documents: list[Document]) -> str:
    """A hash of every document's id, metadata and text: equal corpora hash equal."""
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: d.doc_id):
        digest.update(json.dumps(doc.metadata(), sort_keys=True).encode("utf-8"))
        digest.update(doc.sha256.encode("ascii"))
    return digest.hexdigest()
