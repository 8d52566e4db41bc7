"""The per-document stages as plain functions over plain data, so any engine can run them anywhere.

A document travels between processes as a dict of strings and numbers (never a pickle on disk);
`document_from_dict(document_to_dict(d)) == d`, segments included.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ingest.chunking import Chunk, ChunkerSettings, Sentence, chunk_document_with_sentences
from ingest.documents import Document, load_or_skip
from ingest.embedding import with_context
from ingest.readers import Segment, SegmentKind
from ingest.structure import typed_spans


def document_to_dict(document: Document) -> dict[str, Any]:
    segments = None if document.segments is None else [asdict(s) for s in document.segments]
    soft_hyphens = list(document.soft_hyphens)
    return {**document.metadata(), "text": document.text, "segments": segments, "soft_hyphens": soft_hyphens}


def document_from_dict(data: dict[str, Any]) -> Document:
    fields = dict(data)
    segments = fields.pop("segments")
    if segments is not None:
        segments = [Segment(**{**s, "kind": SegmentKind(s["kind"])}) for s in segments]
    return Document(**{**fields, "pages": tuple(fields["pages"])}, segments=segments)


def parse_file(path: str, corpus_dir: str) -> dict[str, Any]:
    """Read and parse one file: {"document", "spans"} (its paragraph texts, for the corpus-wide
    chrome rule) or {"skipped": {"source", "reason"}}."""
    loaded = load_or_skip(Path(path), Path(corpus_dir))
    if isinstance(loaded, dict):
        return {"skipped": loaded}
    spans = [t.span.text for t in typed_spans(loaded.text, loaded.segments)]
    return {"document": document_to_dict(loaded), "spans": spans}


def chunk_parsed(document: dict[str, Any], settings: dict[str, Any], chrome: list[str]) -> dict[str, Any]:
    """Blocks, chunks and sentences of one document, with the texts the embedder will see."""
    doc = document_from_dict(document)
    chunker = ChunkerSettings(**settings["chunker"])
    blocks, chunks, sentences = chunk_document_with_sentences(doc, chunker, frozenset(chrome))
    return {
        "blocks": len(blocks),
        "duplicates": sum(1 for b in blocks if b.duplicate_of is not None),
        "chunks": [asdict(c) for c in chunks],
        "sentences": [asdict(s) for s in sentences],
        "chunk_texts": [
            with_context(doc.reading(c.start, c.end), doc, c.section, c.speaker)
            if settings["embed_context"]
            else doc.reading(c.start, c.end)
            for c in chunks
        ],
        "sentence_texts": [doc.reading(s.start, s.end) for s in sentences],
    }


def chunks_from(parsed: dict[str, Any]) -> tuple[list[Chunk], list[Sentence]]:
    return [Chunk(**c) for c in parsed["chunks"]], [Sentence(**s) for s in parsed["sentences"]]
