"""The embedding cache beside the index: a re-ingest embeds only changed text, a damaged cache
is ignored, and the index equals one built from scratch."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ingest.embedding_cache import KEYS_FILE, META_FILE, VECTORS_FILE, cache_dir
from ingest.index_store import load_index
from ingest.pipeline import IngestSummary, build_index
from tests.conftest import REPO, FakeEmbedder

PIP_DOCS = REPO / "eval" / "corpora" / "pip-docs"
FILES = (
    "getting-started.md",
    "topics/workflow.md",
    "topics/https-certificates.md",
    "reference/requirement-specifiers.md",
)


def asked_by_calibration() -> bool:
    """Whether the caller is ingest's calibration, which embeds questions (the unrelated bank and
    the corpus's heading questions) at every ingest: they are not passages or sentences."""
    return sys._getframe(2).f_code.co_filename.endswith(f"ingest{os.sep}calibration.py")


class CountingEmbedder(FakeEmbedder):
    """The fake embedder, remembering every passage and sentence it was asked to embed. (The
    cache keys on the embedder's class too, so one index is always built with this one.)"""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not asked_by_calibration():
            self.asked.extend(texts)
        return super().embed_documents(texts)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in FILES:
        shutil.copyfile(PIP_DOCS / name, folder / Path(name).name)
    return folder


def embedded_texts(index_dir: Path, doc_id: str | None = None) -> set[str]:
    """Every text an index's vectors stand for (passages with their context, as ingest embeds
    them, and sentences), or those of one document."""
    from ingest.embedding import with_context

    index = load_index(index_dir)
    documents = index.documents
    passages = {
        with_context(c.text, documents[c.doc_id], c.section, c.speaker)
        for c in index.chunks
        if doc_id in (None, c.doc_id)
    }
    return passages | {documents[s.doc_id].text[s.start : s.end] for s in index.sentences if doc_id in (None, s.doc_id)}


def vectors(index_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    index = load_index(index_dir)
    return index.dense.reconstruct_n(0, index.dense.ntotal), index.sentence_dense.reconstruct_n(
        0, index.sentence_dense.ntotal
    )


def assert_same_index(built: Path, scratch: Path) -> None:
    first, second = load_index(built), load_index(scratch)
    assert [c.chunk_id for c in first.chunks] == [c.chunk_id for c in second.chunks]
    for mine, theirs in zip(vectors(built), vectors(scratch), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert {k: v["sha256"] for k, v in first.manifest["artifacts"].items()} == {
        k: v["sha256"] for k, v in second.manifest["artifacts"].items()
    }


def edit(corpus: Path) -> None:
    changed = corpus / "workflow.md"
    text = changed.read_text(encoding="utf-8")
    changed.write_text(text + "\nA paragraph added since the last ingest. It has two sentences.\n", encoding="utf-8")


def test_changing_one_file_embeds_only_its_new_texts(corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    first = CountingEmbedder()
    summary = build_index(corpus, target, first)
    assert set(first.asked) == embedded_texts(target)
    assert summary.texts_embedded == len(first.asked) == len(set(first.asked))  # a repeated text is embedded once
    before = embedded_texts(target)
    edit(corpus)

    second = CountingEmbedder()
    summary = build_index(corpus, target, second)
    after = embedded_texts(target)
    assert set(second.asked) == after - before  # only the texts the last build did not have
    assert 0 < len(second.asked) < len(after) / 10
    assert set(second.asked) <= embedded_texts(target, "workflow")  # all from the changed file
    assert (summary.texts_embedded, summary.texts_cached) == (len(second.asked), len(after) - len(second.asked))
    scratch = tmp_path / "scratch"
    build_index(corpus, scratch, FakeEmbedder())
    assert_same_index(target, scratch)


def test_unchanged_corpus_embeds_nothing_and_the_cache_is_pruned(corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    build_index(corpus, target, CountingEmbedder())
    again = CountingEmbedder()
    summary = build_index(corpus, target, again)
    assert again.asked == [] and summary.texts_embedded == 0
    (corpus / "workflow.md").unlink()
    build_index(corpus, target, CountingEmbedder())
    meta = json.loads((cache_dir(target) / META_FILE).read_text(encoding="utf-8"))
    assert meta["count"] == len(embedded_texts(target))  # the deleted file's texts are gone from the cache
    assert not (target / cache_dir(target).name).exists()  # beside the index, not inside it


def test_cache_of_another_model_is_not_used(corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    build_index(corpus, target, CountingEmbedder())
    other = CountingEmbedder()
    other.weights_sha256 = "e" * 64
    build_index(corpus, target, other)
    assert set(other.asked) == embedded_texts(target)


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-20:-16] = bytes(b ^ 0xFF for b in data[-20:-16])  # same size, other content
    path.write_bytes(bytes(data))


def rechecksummed(damage: Callable[[Path], object]) -> Callable[[Path], object]:
    """Damage a file and update cache.json to match: only the content checks are left to catch it."""
    from ingest.index_store import file_sha256

    def damage_and_cover(directory: Path) -> None:
        damage(directory)
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        for name in (KEYS_FILE, VECTORS_FILE):
            meta["files"][name] = {"sha256": file_sha256(directory / name), "bytes": (directory / name).stat().st_size}
        (directory / META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    return damage_and_cover


def scale_vectors(directory: Path) -> None:
    vectors = np.load(directory / VECTORS_FILE)
    np.save(directory / VECTORS_FILE, vectors * 2)


DAMAGE: dict[str, Callable[[Path], object]] = {
    "vectors edited": lambda d: flip_bytes(d / VECTORS_FILE),
    "keys edited": lambda d: flip_bytes(d / KEYS_FILE),
    "vectors truncated": lambda d: (d / VECTORS_FILE).write_bytes((d / VECTORS_FILE).read_bytes()[:-100]),
    "keys missing": lambda d: (d / KEYS_FILE).unlink(),
    "cache.json not JSON": lambda d: (d / META_FILE).write_text("{not json"),
    "cache.json a list": lambda d: (d / META_FILE).write_text("[]"),
    "files entry not an object": lambda d: (d / META_FILE).write_text(
        json.dumps({**json.loads((d / META_FILE).read_text()), "files": {KEYS_FILE: 1, VECTORS_FILE: 2}})
    ),
    "vectors not unit length, checksum updated": rechecksummed(scale_vectors),
    "vectors not an array, checksum updated": rechecksummed(lambda d: (d / VECTORS_FILE).write_bytes(b"\x93NUMPY")),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_cache_is_ignored_and_rebuilt(
    damage: str, corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "index"
    build_index(corpus, target, CountingEmbedder())
    DAMAGE[damage](cache_dir(target))
    again = CountingEmbedder()
    with caplog.at_level(logging.WARNING, logger="ingest.embedding_cache"):
        summary: IngestSummary = build_index(corpus, target, again)
    assert "embedding cache" in caplog.text and "ignored" in caplog.text
    assert set(again.asked) == embedded_texts(target) and summary.texts_cached == 0  # all embedded again
    scratch = tmp_path / "scratch"
    build_index(corpus, scratch, FakeEmbedder())
    assert_same_index(target, scratch)
    clean = CountingEmbedder()
    build_index(corpus, target, clean)  # the rebuilt cache is whole again
    assert clean.asked == []


def test_leftover_from_a_killed_cache_write_is_removed(corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    leftover = tmp_path / f".{cache_dir(target).name}.tmp-deadbeef"
    leftover.mkdir()
    build_index(corpus, target, CountingEmbedder())
    assert not leftover.exists() and cache_dir(target).is_dir()
