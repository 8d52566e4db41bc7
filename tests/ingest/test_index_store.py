"""The index directory: round trip, determinism, atomic swap, lock, and refusal of damage."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from ingest.chunking import Chunk, Sentence
from ingest.errors import IndexCorrupt, IndexNotFound, IngestLocked, ModelMismatch
from ingest.index_store import _chunk_sentence_ids, ingest_lock, load_index, verify_index
from ingest.pipeline import IngestSettings, build_index, index_is_current
from tests.conftest import CORPUS, FakeEmbedder, write_justified_pdf


@pytest.fixture
def fake_index(tmp_path: Path) -> Path:
    target = tmp_path / "index"
    build_index(CORPUS, target, FakeEmbedder())
    return target


def test_round_trip(fake_index: Path) -> None:
    index = load_index(fake_index, FakeEmbedder.weights_sha256)
    assert index.dense.ntotal == len(index.chunks) > 10
    for chunk in index.chunks:
        assert index.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
    manifest = index.manifest
    assert manifest["model"] == {
        "name": FakeEmbedder.name,
        "sha256": FakeEmbedder.weights_sha256,
        "dimension": 64,
        "normalized": True,
    }
    assert {"dense.faiss", "sentences.faiss", "chunks.jsonl", "sentences.jsonl", "documents.jsonl"} <= set(
        manifest["artifacts"]
    )
    assert {"lexical/params.index.json", "lexical_sentences/vocab.index.json"} <= set(manifest["artifacts"])
    # Passages carry impact-ordered postings for `best`, checksummed like every artifact.
    assert {"lexical/impact_rows.npy", "lexical/impact_scores.npy"} <= set(manifest["artifacts"])
    assert not any(name.startswith("lexical_sentences/impact") for name in manifest["artifacts"])
    # read from the map, as plain ndarray views (a np.memmap object costs Python time per slice)
    assert all(isinstance(array.base, np.memmap) and type(array) is np.ndarray for array in index.lexical.impacts())
    assert not any(name.endswith((".pkl", ".pickle")) for name in manifest["artifacts"])
    assert manifest["ingest"]["chunker"] == {"max_chars": 1000, "overlap_chars": 0}
    assert set(manifest["retrieval"]) == {
        "dense_weight",
        "sentence_weight",
        "lexical_weight",
        "answerable_threshold",
        "answer_lexical_weight",
    }
    assert index.lexical.size == len(index.chunks) and index.sentence_lexical.size == len(index.sentences)
    assert "faiss-cpu" in manifest["libraries"] and manifest["created_at"]


def test_reingest_gives_same_ids_and_hash(fake_index: Path, tmp_path: Path) -> None:
    other = tmp_path / "again"
    build_index(CORPUS, other, FakeEmbedder())
    first, second = load_index(fake_index), load_index(other)
    assert [c.chunk_id for c in first.chunks] == [c.chunk_id for c in second.chunks]
    assert first.manifest["corpus"]["hash"] == second.manifest["corpus"]["hash"]
    assert {k: v["sha256"] for k, v in first.manifest["artifacts"].items()} == {
        k: v["sha256"] for k, v in second.manifest["artifacts"].items()
    }


def test_rebuild_replaces_index_and_leaves_no_temporary_folder(fake_index: Path) -> None:
    build_index(CORPUS, fake_index, FakeEmbedder(dimension=32))
    assert load_index(fake_index).dense.d == 32
    leftovers = [p.name for p in fake_index.parent.iterdir() if p.name.startswith(".index.tmp")]
    assert leftovers == []


def test_failed_build_keeps_previous_index(fake_index: Path) -> None:
    class Exploding(FakeEmbedder):
        def embed_documents(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("boom")

    before = (fake_index / "manifest.json").read_bytes()
    with pytest.raises(RuntimeError):
        build_index(CORPUS, fake_index, Exploding())
    assert (fake_index / "manifest.json").read_bytes() == before
    load_index(fake_index)


def test_if_stale_detects_current_and_changed(fake_index: Path, tmp_path: Path) -> None:
    sha = FakeEmbedder.weights_sha256
    assert index_is_current(fake_index, CORPUS, IngestSettings(), sha)
    assert not index_is_current(fake_index, CORPUS, IngestSettings(embed_context=False), sha)
    assert not index_is_current(fake_index, CORPUS, IngestSettings(), "0" * 64)
    changed = tmp_path / "corpus"
    shutil.copytree(CORPUS, changed)
    next(changed.glob("*.txt")).write_text("A different text.\n", encoding="utf-8")
    assert not index_is_current(fake_index, changed, IngestSettings(), sha)


def test_if_stale_rebuilds_what_other_ingest_code_built(fake_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An index from a release that parses differently is not current, though its corpus,
    settings and model are the same."""
    import ingest.index_store as index_store
    import ingest.pipeline as pipeline

    sha = FakeEmbedder.weights_sha256
    built_by = json.loads((fake_index / "manifest.json").read_text(encoding="utf-8"))["built_by"]
    assert built_by == index_store.builder_fingerprint()
    assert len(built_by["ingest_code_sha256"]) == 64 and "markdown-it-py" in built_by["libraries"]
    other_code = {**built_by, "ingest_code_sha256": "0" * 64}
    monkeypatch.setattr(pipeline, "builder_fingerprint", lambda: other_code)
    assert not index_is_current(fake_index, CORPUS, IngestSettings(), sha)
    other_parser = {**built_by, "libraries": {**built_by["libraries"], "trafilatura": "0.0.1"}}
    monkeypatch.setattr(pipeline, "builder_fingerprint", lambda: other_parser)
    assert not index_is_current(fake_index, CORPUS, IngestSettings(), sha)
    monkeypatch.setattr(pipeline, "builder_fingerprint", lambda: built_by)
    assert index_is_current(fake_index, CORPUS, IngestSettings(), sha)


def test_ingest_code_digest_covers_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest changes when any file of the ingest package does (read here from a copy)."""
    import ingest
    import ingest.index_store as index_store

    package = Path(ingest.__file__).resolve().parent
    copy = tmp_path / "ingest"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(index_store, "__file__", str(copy / "index_store.py"))
    first = index_store.builder_fingerprint()["ingest_code_sha256"]
    assert first == index_store.builder_fingerprint()["ingest_code_sha256"]
    with (copy / "sentences.py").open("a", encoding="utf-8") as handle:
        handle.write("# a change\n")
    assert index_store.builder_fingerprint()["ingest_code_sha256"] != first


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="not found"):
        verify_index(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexNotFound, match="manifest.json is missing"):
        verify_index(tmp_path / "empty")


def test_truncated_faiss_file_is_refused(fake_index: Path) -> None:
    path = fake_index / "dense.faiss"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IndexCorrupt, match="dense.faiss: size"):
        load_index(fake_index)


def test_edited_chunk_store_is_refused(fake_index: Path) -> None:
    path = fake_index / "chunks.jsonl"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("ISIS", "ISIL", 1), encoding="utf-8")  # same size, other bytes
    with pytest.raises(IndexCorrupt, match="chunks.jsonl: sha256 does not match"):
        load_index(fake_index)


def test_edited_lexical_index_is_refused(fake_index: Path) -> None:
    path = fake_index / "lexical" / "vocab.index.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"', "'", 2), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="lexical/vocab.index.json"):
        load_index(fake_index)


def test_missing_artifact_and_bad_manifest(fake_index: Path) -> None:
    (fake_index / "documents.jsonl").unlink()
    with pytest.raises(IndexCorrupt, match="documents.jsonl: artifact missing"):
        verify_index(fake_index)
    (fake_index / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorrupt, match="not valid JSON"):
        verify_index(fake_index)


def test_manifest_cannot_point_outside_the_index(fake_index: Path) -> None:
    manifest = json.loads((fake_index / "manifest.json").read_text())
    manifest["artifacts"]["../secret"] = {"sha256": "0", "bytes": 1}
    (fake_index / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorrupt, match="artifact missing"):
        verify_index(fake_index)


def test_model_mismatch_is_refused(fake_index: Path) -> None:
    with pytest.raises(ModelMismatch, match="built with model weights"):
        verify_index(fake_index, "0" * 64)


def test_second_ingest_is_refused_while_one_runs(tmp_path: Path) -> None:
    target = tmp_path / "index"
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ingest_lock(target):
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert entered.wait(10)
        with pytest.raises(IngestLocked, match="another ingest"):
            build_index(CORPUS, target, FakeEmbedder())
    finally:
        release.set()
        holder.join()
    build_index(CORPUS, target, FakeEmbedder())  # free again once the first one is done


def _sentences_inside_by_scanning(chunks: list[Chunk], sentences: list[Sentence]) -> list[list[int]]:
    return [
        [i for i, s in enumerate(sentences) if s.doc_id == c.doc_id and c.start <= s.start and s.end <= c.end]
        for c in chunks
    ]


def test_chunk_sentence_ids_equal_a_full_scan() -> None:
    """Overlapping chunks, sentences out of order, sentences crossing a chunk's edge, documents
    without sentences: the bisecting lookup finds what scanning every sentence finds."""
    rng = np.random.default_rng(7)
    sentences, chunks = [], []
    for doc in range(4):
        for _ in range(40):
            start = int(rng.integers(0, 500))
            sentences.append(Sentence(f"d{doc}", start, start + int(rng.integers(1, 60))))
        for number in range(15):
            start = int(rng.integers(0, 500))
            end = start + int(rng.integers(0, 120))
            chunks.append(Chunk(f"d{doc}:{number}", f"d{doc}", "", start, end, None, None, "narrative"))
    chunks.append(Chunk("e:0", "empty", "", 0, 100, None, None, "narrative"))
    order = rng.permutation(len(sentences))
    sentences = [sentences[i] for i in order]
    assert _chunk_sentence_ids(chunks, sentences) == _sentences_inside_by_scanning(chunks, sentences)


def test_a_hyphenated_word_is_embedded_and_searched_whole(tmp_path: Path) -> None:
    """A PDF's text keeps the typesetter's hyphen and line break as printed (citations slice it);
    the passage and sentence texts that are embedded and searched read the word whole."""
    from ingest.lexical import LexicalIndex, tokenize
    from ingest.stages import chunk_parsed, parse_file

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_justified_pdf(corpus / "justified.pdf")
    parsed = parse_file(str(corpus / "justified.pdf"), str(corpus))
    pieces = chunk_parsed(parsed["document"], IngestSettings().as_dict(), [])
    assert any("unsuitable for distribution today" in t for t in pieces["chunk_texts"])
    assert any("unsuitable for distribution today" in t for t in pieces["sentence_texts"])
    [[word]] = tokenize(["distribution"])
    build_index(corpus, tmp_path / "index", FakeEmbedder())
    index = load_index(tmp_path / "index", FakeEmbedder.weights_sha256)
    assert "dis-\ntribution" in index.documents["justified"].text
    for lexical in ("lexical", "lexical_sentences"):
        assert LexicalIndex.load(tmp_path / "index" / lexical).document_frequency(word) == 1, lexical
