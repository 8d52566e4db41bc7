"""Plain text: the file's text as it is; the layout rules find its structure."""

from __future__ import annotations

from pathlib import Path

from ingest.readers.parsed import Parsed, decode_utf8


def read_text(raw: bytes, path: Path) -> Parsed:
    return Parsed(decode_utf8(raw, path), "text", None)
