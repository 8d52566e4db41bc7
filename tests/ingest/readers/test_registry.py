"""The readers' registry: a format by its extension, and each file parsed once per content."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import CorpusError
from ingest.readers import read_file


def test_unknown_format_is_refused_by_the_reader(tmp_path: Path) -> None:
    (tmp_path / "x.odt").write_bytes(b"PK")

    with pytest.raises(CorpusError, match="unsupported file type"):
        read_file(tmp_path / "x.odt")


def test_a_file_is_parsed_again_only_when_its_bytes_or_path_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.readers as readers

    parsed_paths: list[str] = []
    real = readers.READERS[".md"]

    def counting(raw: bytes, path: Path) -> readers.Parsed:
        parsed_paths.append(path.name)
        return real(raw, path)

    monkeypatch.setitem(readers.READERS, ".md", counting)
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    first.write_text("# Title\n\nOne paragraph.\n", encoding="utf-8")
    second.write_text("# Title\n\nOne paragraph.\n", encoding="utf-8")
    once = read_file(first)
    again = read_file(first)
    assert again == once and again.segments is not once.segments  # equal, in containers of its own
    read_file(second)  # same bytes, another path: its own parse
    first.write_text("# Title\n\nAnother paragraph.\n", encoding="utf-8")
    assert "Another" in read_file(first).text
    assert parsed_paths == ["a.md", "b.md", "a.md"]
