"""One reader per format: a file in, the document's text and its typed segments out.

Each reader decides what the document's text is (the source itself for .txt and .md, the
extracted main content for .html, the pages' text for .pdf) and reports segments as offsets
into that text, tracked while parsing. Chunking, embedding and citations never ask which
format they are looking at.

One module per format, chosen by extension from READERS: a new format is one module here and
one line there. `parsed` holds what every reader returns and the helpers they share.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ingest.errors import CorpusError
from ingest.readers.html import read_html
from ingest.readers.markdown import markdown_segments, read_markdown
from ingest.readers.parsed import Parsed, Segment, SegmentKind, decode_utf8, document_text, trim_span
from ingest.readers.pdf import pdf_segments, read_pdf
from ingest.readers.text import read_text

__all__ = [
    "PARSED_CACHE_SIZE",
    "READERS",
    "Parsed",
    "Reader",
    "Segment",
    "SegmentKind",
    "decode_utf8",
    "document_text",
    "markdown_segments",
    "pdf_segments",
    "read_file",
    "read_html",
    "read_markdown",
    "read_pdf",
    "read_text",
    "trim_span",
]


Reader = Callable[[bytes, Path], Parsed]
READERS: dict[str, Reader] = {
    ".txt": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
}


# Files parsed in this process, by path and sha256 of their bytes: `citeqa ingest` reads the
# corpus once to report a bad one before the model loads, then the pipeline reads it again
# (docker-doc: 2 s of markdown-it each time, a sixth of a re-ingest). A reader is a function
# of (bytes, path) alone, so the same bytes at the same path parse the same.
PARSED_CACHE_SIZE = 4096
_parsed: OrderedDict[tuple[str, bytes], Parsed] = OrderedDict()


def read_file(path: Path) -> Parsed:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise CorpusError(f"{path}: unsupported file type '{path.suffix}'")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from exc
    if not raw.strip():
        raise CorpusError(f"{path}: document is empty")
    key = (str(path), hashlib.sha256(raw).digest())
    parsed = _parsed.get(key)
    if parsed is None:
        parsed = reader(raw, path)
        if not parsed.text.strip():
            raise CorpusError(f"{path}: no text to index")
        _parsed[key] = parsed
        if len(_parsed) > PARSED_CACHE_SIZE:
            _parsed.popitem(last=False)
    else:
        _parsed.move_to_end(key)
    # Fresh containers for each caller: a Parsed is frozen, its list and dict are not.
    segments = None if parsed.segments is None else list(parsed.segments)
    return replace(parsed, segments=segments, metadata=dict(parsed.metadata))
