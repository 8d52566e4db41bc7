"""Documents embedded with the ONNX export agree with sentence-transformers, whatever the batching."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.embedding import SentenceTransformerEmbedder, with_context
from ingest.index_store import load_index
from ingest.onnx_documents import DOCUMENT_ENCODER_FILES, OnnxDocumentEmbedder, copy_reusable_encoder, length_buckets
from ingest.onnx_model import CONFIG_FILE, MODEL_FILE, QUERY_FILE, TOKENIZER_FILE, encoder_config
from ingest.pipeline import IngestSettings, build_index, index_is_current
from tests.conftest import CORPUS, FakeEmbedder


@given(st.lists(st.integers(1, 256), max_size=300), st.integers(256, 4096), st.integers(1, 64))
def test_buckets_cover_every_text_once_within_budget(lengths: list[int], budget: int, most: int) -> None:
    array = np.asarray(lengths, dtype=np.int64)
    buckets = list(length_buckets(array, budget, most))
    assert sorted(int(i) for b in buckets for i in b) == list(range(len(lengths)))
    for bucket in buckets:
        assert len(bucket) == 1 or (len(bucket) <= most and len(bucket) * array[bucket].max() <= budget)
    longest = [int(array[b].max()) for b in buckets]
    assert longest == sorted(longest)  # shortest first: similar lengths share a bucket


def test_embedding_before_an_export_is_refused(model_dir: Path) -> None:
    with pytest.raises(RuntimeError, match="export"):
        OnnxDocumentEmbedder(model_dir).embed_documents(["text"])


@pytest.fixture(scope="module")
def onnx(real_index: Path, model_dir: Path) -> OnnxDocumentEmbedder:
    embedder = OnnxDocumentEmbedder(model_dir)
    embedder.load(real_index / "encoder")
    return embedder


def article_texts(index_dir: Path) -> tuple[list[str], list[str]]:
    """The article's passages and sentences, as ingest embeds them."""
    index = load_index(index_dir)
    documents = index.documents
    passages = [with_context(c.text, documents[c.doc_id], c.section, c.speaker) for c in index.chunks]
    return passages, [documents[s.doc_id].text[s.start : s.end] for s in index.sentences]


@pytest.mark.integration
def test_onnx_and_pytorch_document_embeddings_agree(
    onnx: OnnxDocumentEmbedder, real_index: Path, model_dir: Path
) -> None:
    torch = SentenceTransformerEmbedder(model_dir)
    for texts in article_texts(real_index):
        cosines = (torch.embed_documents(texts) * onnx.embed_documents(texts)).sum(axis=1)
        assert cosines.min() >= 0.999, texts[int(cosines.argmin())]


@pytest.mark.integration
def test_bucketed_batches_equal_texts_one_at_a_time(onnx: OnnxDocumentEmbedder, real_index: Path) -> None:
    passages, sentences = article_texts(real_index)
    texts = [*passages[:20], *sentences[:60], "x", "A very long passage " * 200]
    together = onnx.embed_documents(texts)  # sorted by length, bucketed, put back in order
    alone = np.stack([onnx.embed_documents([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


@pytest.mark.integration
def test_an_encoder_loaded_from_its_files_in_memory_embeds_as_from_its_folder(
    onnx: OnnxDocumentEmbedder, real_index: Path, model_dir: Path
) -> None:
    """As a Ray actor loads it (the driver's bytes, no folder on the worker's disk)."""
    files = {name: (real_index / "encoder" / name).read_bytes() for name in DOCUMENT_ENCODER_FILES}
    in_memory = OnnxDocumentEmbedder(model_dir)
    in_memory.load(files)
    passages, sentences = article_texts(real_index)
    texts = [*passages[:10], *sentences[:30]]
    np.testing.assert_array_equal(in_memory.embed_documents(texts), onnx.embed_documents(texts))
    with pytest.raises(KeyError):  # a file left out is missed, not looked for on disk
        OnnxDocumentEmbedder(model_dir).load({k: v for k, v in files.items() if k != TOKENIZER_FILE})


@pytest.mark.integration
def test_real_reingest_equals_a_build_from_scratch(real_index: Path, model_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    (corpus / "second.txt").write_text("A second article.\n\nIt has a paragraph of its own.\n", encoding="utf-8")

    def build(target: Path) -> Any:
        embedder = OnnxDocumentEmbedder(model_dir)

        def export(folder: Path) -> dict[str, Any]:  # the session's export, copied: as fresh, and quicker
            shutil.copytree(real_index / "encoder", folder)
            embedder.load(folder)
            return {}

        return build_index(corpus, target, embedder, IngestSettings(onnx_encoder=True), export_encoder=export)

    target = tmp_path / "index"
    build(target)
    (corpus / "second.txt").write_text("A second article.\n\nIts paragraph was rewritten.\n", encoding="utf-8")
    summary = build(target)
    assert 0 < summary.texts_embedded <= 4 and summary.texts_cached > 150
    scratch = tmp_path / "scratch"
    build(scratch)
    again, fresh = load_index(target), load_index(scratch)
    assert [c.chunk_id for c in again.chunks] == [c.chunk_id for c in fresh.chunks]
    for mine, theirs in ((again.dense, fresh.dense), (again.sentence_dense, fresh.sentence_dense)):
        reused, embedded = mine.reconstruct_n(0, mine.ntotal), theirs.reconstruct_n(0, theirs.ntotal)
        np.testing.assert_allclose(reused, embedded, atol=1e-5)  # batch shapes differ, so not bit for bit


@pytest.fixture
def exported_index(tmp_path: Path) -> tuple[Path, Path]:
    """An index whose encoder/ came from a stand-in export, and the model folder it names."""
    model = tmp_path / "model"
    model.mkdir()
    (model / TOKENIZER_FILE).write_text('{"stand-in": "tokenizer"}', encoding="utf-8")

    def export(folder: Path) -> dict[str, Any]:
        folder.mkdir()
        (folder / MODEL_FILE).write_bytes(b"stand-in graph" * 100)
        (folder / QUERY_FILE).write_bytes(b"stand-in int8 graph" * 100)
        shutil.copyfile(model / TOKENIZER_FILE, folder / TOKENIZER_FILE)
        (folder / CONFIG_FILE).write_text(json.dumps(encoder_config()), encoding="utf-8")
        return encoder_config()

    target = tmp_path / "index"
    build_index(CORPUS, target, FakeEmbedder(), IngestSettings(onnx_encoder=True), export_encoder=export)
    return target, model


def edit_manifest(index: Path, change: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


STALE: dict[str, Callable[[Path, Path], object]] = {
    "graph edited": lambda index, model: (index / "encoder" / MODEL_FILE).write_bytes(b"other graph" * 100),
    "graph missing": lambda index, model: (index / "encoder" / MODEL_FILE).unlink(),
    "query graph edited": lambda index, model: (index / "encoder" / QUERY_FILE).write_bytes(b"other" * 100),
    "query graph missing": lambda index, model: (index / "encoder" / QUERY_FILE).unlink(),
    "other query weights": lambda index, model: edit_manifest(
        index, lambda m: m["query_encoder"].update(query_weights="int8, per tensor")
    ),
    "other tokenizer": lambda index, model: (model / TOKENIZER_FILE).write_text("{}", encoding="utf-8"),
    "other torch": lambda index, model: edit_manifest(index, lambda m: m["libraries"].update(torch="1.0")),
    "other quantiser": lambda index, model: edit_manifest(index, lambda m: m["libraries"].update(onnxruntime="1.0")),
    "other opset": lambda index, model: edit_manifest(index, lambda m: m["query_encoder"].update(opset=11)),
    "other weights": lambda index, model: edit_manifest(index, lambda m: m["model"].update(sha256="0" * 64)),
    "no encoder": lambda index, model: edit_manifest(index, lambda m: m.update(query_encoder={"backend": "model"})),
    "not an index": lambda index, model: (index / "manifest.json").unlink(),
}


def test_an_encoder_that_exporting_would_reproduce_is_copied(exported_index: tuple[Path, Path], tmp_path: Path) -> None:
    index, model = exported_index
    assert copy_reusable_encoder(index, model, FakeEmbedder.weights_sha256, tmp_path / "copy")
    for name in (MODEL_FILE, QUERY_FILE, TOKENIZER_FILE, CONFIG_FILE):
        assert (tmp_path / "copy" / name).read_bytes() == (index / "encoder" / name).read_bytes()


def test_an_index_with_an_older_encoder_is_stale(exported_index: tuple[Path, Path]) -> None:
    index, _ = exported_index
    settings, sha = IngestSettings(onnx_encoder=True), FakeEmbedder.weights_sha256
    assert index_is_current(index, CORPUS, settings, sha)

    def before_int8(manifest: dict[str, Any]) -> None:
        for key in ("query_file", "query_weights"):
            del manifest["query_encoder"][key]

    edit_manifest(index, before_int8)
    assert not index_is_current(index, CORPUS, settings, sha)  # served its float32 model to queries


@pytest.mark.parametrize("stale", list(STALE))
def test_an_encoder_that_may_differ_is_exported_again(
    stale: str, exported_index: tuple[Path, Path], tmp_path: Path
) -> None:
    index, model = exported_index
    STALE[stale](index, model)
    assert not copy_reusable_encoder(index, model, FakeEmbedder.weights_sha256, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()  # export_onnx then writes the folder from nothing
