"""Corpus loading: metadata sidecars, clear errors, a stable hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.documents import corpus_hash, load_corpus, read_corpus
from ingest.errors import CorpusError


def write(folder: Path, name: str, text: str, meta: dict[str, object] | None = None) -> None:
    (folder / name).write_text(text, encoding="utf-8")
    if meta is not None:
        (folder / (Path(name).stem + ".meta.json")).write_text(json.dumps(meta), encoding="utf-8")


def test_real_corpus_metadata() -> None:
    [doc] = load_corpus(Path(__file__).resolve().parents[2] / "corpus")
    assert doc.doc_id == "insider-2024-isis-k-crocus"
    assert doc.publisher == "The Insider"
    assert doc.language == "en"
    assert doc.source == "000_555e6245296c1fd9.txt"


def test_second_document_is_just_a_second_file(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "First.", {"doc_id": "a", "title": "A"})
    write(tmp_path, "b.txt", "Second.")
    docs = load_corpus(tmp_path)
    assert [d.doc_id for d in docs] == ["a", "b"]
    assert docs[1].title == "b"


def test_hash_is_stable_and_sensitive(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "First.", {"doc_id": "a", "title": "A"})
    first = corpus_hash(load_corpus(tmp_path))
    assert first == corpus_hash(load_corpus(tmp_path))
    write(tmp_path, "a.txt", "First!", {"doc_id": "a", "title": "A"})
    assert corpus_hash(load_corpus(tmp_path)) != first


def _pdf(encrypt: bool = False) -> bytes:
    """A one-page PDF without text (a scan has none either), or one that needs a password."""
    import io

    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if encrypt:
        writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.txt", b"\xff\xfe bad", "not valid UTF-8"),
        ("scan.pdf", _pdf(), "no extractable text"),
        ("locked.pdf", _pdf(encrypt=True), "encrypted PDF"),
        ("x.txt", b"   \n", "empty"),
        ("x.md", b"ok\x00\x01", "binary"),
        ("x.pdf", b"%PDF-1.4 truncated nonsense", "PDF"),
        ("x.html", b"<html><head><title>T</title></head><body><script>var a = 1;</script></body></html>", "no text"),
        ("x.docx", b"PK\x03\x04", "unsupported file type"),
        (
            "old.html",
            b'<html><head><title>Redirecting...</title><meta http-equiv="refresh" content="0; url=../new/page.html">'
            b"</head><body>Redirecting...</body></html>",
            "a redirect to ../new/page.html",
        ),
    ],
)
def test_unreadable_files_are_skipped_whole_and_named(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    write(tmp_path, "good.txt", "A good document.")
    (tmp_path / name).write_bytes(content)
    corpus = read_corpus(tmp_path)
    assert [d.doc_id for d in corpus.documents] == ["good"]
    [skipped] = corpus.skipped
    assert skipped["source"] == name and message in skipped["reason"], skipped
    (tmp_path / "good.txt").unlink()
    with pytest.raises(CorpusError, match=f"no readable documents.*{name}.*{message}"):
        load_corpus(tmp_path)


@pytest.mark.parametrize(
    ("content", "meta", "message"),
    [
        (b"ok", {"doc_id": "../escape"}, "doc_id must match"),
        (b"ok", {"year": "2024"}, "'year' must be an integer"),
    ],
)
def test_bad_documents_are_refused_clearly(
    tmp_path: Path, content: bytes, meta: dict[str, object] | None, message: str
) -> None:
    (tmp_path / "x.txt").write_bytes(content)
    if meta is not None:
        (tmp_path / "x.meta.json").write_text(json.dumps(meta))
    with pytest.raises(CorpusError, match=message):
        load_corpus(tmp_path)


def test_missing_and_empty_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match="no readable documents"):
        load_corpus(tmp_path)


def test_duplicate_doc_ids_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "One.", {"doc_id": "same"})
    write(tmp_path, "b.txt", "Two.", {"doc_id": "same"})
    with pytest.raises(CorpusError, match="duplicate doc_id"):
        load_corpus(tmp_path)


def test_wrong_metadata_stops_the_ingest_rather_than_skipping_the_document(tmp_path: Path) -> None:
    write(tmp_path, "good.txt", "A good document.")
    write(tmp_path, "x.txt", "Another good text.", {"year": "2024"})
    with pytest.raises(CorpusError, match="'year' must be an integer"):
        read_corpus(tmp_path)
