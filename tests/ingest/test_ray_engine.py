"""The Ray engine gives the index the local engine gives: same chunks, same vectors, same cache."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ingest.documents import load_corpus
from ingest.embedding import Embedder
from ingest.engines import ENGINES, Engine
from ingest.pipeline import IngestSettings, build_index
from ingest.ray_engine import EmbedderLoader
from ingest.stages import document_from_dict, document_to_dict
from service.cli import ENGINE_NAMES
from tests.conftest import REPO, FakeEmbedder, mixed_corpus  # noqa: F401  (fixture)
from tests.ingest.ray_support import assert_same_index, small_corpus

ray = pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra")


def test_documents_travel_as_plain_data(mixed_corpus: Path) -> None:  # noqa: F811
    for document in load_corpus(mixed_corpus):
        data = document_to_dict(document)
        assert json.loads(json.dumps(data)) == data  # strings, numbers, lists and dicts only
        back = document_from_dict(data)
        assert back == document
        assert back.segments == document.segments
        assert back.soft_hyphens == document.soft_hyphens


def test_cli_offers_every_engine() -> None:
    assert set(ENGINE_NAMES) == set(ENGINES)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    # Each RayEngine's driver process starts a local Ray (no address); its workers import this
    # checkout (the venv may hold another editable citeqa), and a test's lambda loader names
    # tests.conftest, which they find on this path.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(REPO)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@contextmanager
def ray_engine(embedder: FakeEmbedder | Embedder, load: EmbedderLoader, workers: int, log: Path) -> Iterator[Engine]:
    """A RayEngine on a local Ray (its driver process starts one), stopped after the test."""
    from ingest.ray_engine import RayEngine

    engine = RayEngine(embedder, load_embedder=load, workers=workers, log_file=log)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_corpus(tmp_path_factory.mktemp("ray") / "corpus")


def test_ray_engine_equals_local_with_the_fake_embedder(local_ray: None, corpus: Path, tmp_path: Path) -> None:
    build_index(corpus, tmp_path / "local", FakeEmbedder())
    with ray_engine(FakeEmbedder(), lambda folder: FakeEmbedder(), 2, tmp_path / "ray.log") as engine:
        summary = build_index(corpus, tmp_path / "ray", FakeEmbedder(), engine=engine)
    assert summary.documents == 3
    assert_same_index(tmp_path / "ray", tmp_path / "local", min_cosine=0.99999)
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["engine"]["name"] == "ray"
    assert manifest["engine"]["nodes"] == 1
    assert manifest["engine"]["cpus"] == 2
    local = json.loads((tmp_path / "local" / "manifest.json").read_text(encoding="utf-8"))
    assert local["engine"]["name"] == "local"
    assert manifest["corpus"] == local["corpus"]


def test_ray_engine_embeds_only_what_the_cache_lacks(local_ray: None, corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    first = build_index(corpus, target, FakeEmbedder())  # the local engine fills the cache
    with ray_engine(FakeEmbedder(), lambda folder: FakeEmbedder(), 1, tmp_path / "ray.log") as engine:
        again = build_index(corpus, target, FakeEmbedder(), engine=engine)
        assert first.texts_embedded > 0
        assert (again.texts_embedded, again.texts_cached) == (0, first.texts_embedded)
        (corpus.parent / "more").mkdir()
        grown = small_corpus(corpus.parent / "more" / "corpus")
        (grown / "extra.md").write_text("# Lighthouse\n\nThe lighthouse keeper logged every ship.\n", encoding="utf-8")
        third = build_index(grown, target, FakeEmbedder(), engine=engine)
    assert 0 < third.texts_embedded < first.texts_embedded  # only the new document's texts


@pytest.mark.integration
def test_ray_engine_equals_local_with_the_real_model(
    local_ray: None, corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    from ingest.embedding import MODEL_SHA256
    from ingest.onnx_documents import OnnxDocumentEmbedder
    from ingest.ray_engine import document_embedder_loader

    settings = IngestSettings(onnx_encoder=True)
    local = OnnxDocumentEmbedder(model_dir)
    build_index(corpus, tmp_path / "local", local, settings, export_encoder=local.export)
    driver = OnnxDocumentEmbedder(model_dir)
    loader = document_embedder_loader(model_dir, MODEL_SHA256, threads=1, gpus=0)
    with ray_engine(driver, loader, 2, tmp_path / "ray.log") as engine:
        build_index(corpus, tmp_path / "ray", driver, settings, export_encoder=driver.export, engine=engine)
    assert_same_index(tmp_path / "ray", tmp_path / "local")


def test_a_worker_refuses_weights_that_do_not_verify(
    local_ray: None, corpus: Path, model_dir: Path, tmp_path: Path
) -> None:
    from ingest.errors import ModelMismatch
    from ingest.ray_engine import document_embedder_loader

    loader = document_embedder_loader(model_dir, "0" * 64, threads=1, gpus=0)
    # Raised in an actor's constructor, it reaches the driver only as the text of an ActorDiedError.
    with (
        ray_engine(FakeEmbedder(dimension=384), loader, 1, tmp_path / "ray.log") as engine,
        pytest.raises(ModelMismatch, match="sha256"),
    ):
        build_index(corpus, tmp_path / "index", FakeEmbedder(dimension=384), engine=engine)
    assert not (tmp_path / "index").exists()


def test_a_cluster_without_room_for_the_workers_is_refused_before_any_work() -> None:
    from ingest.errors import ClusterError
    from ingest.ray_driver import NodeRoom, check_room, embed_batch_size

    nodes = [NodeRoom("a", cpus=4, gpus=0), NodeRoom("b", cpus=2, gpus=1)]
    check_room(nodes, workers=3, cpus=2, gpus=0, where="HEAD:6379")  # two actors on a, one on b
    with pytest.raises(
        ClusterError, match=r"room for 3 embedding worker\(s\) of 2 CPU\(s\) and 0 GPU\(s\); --workers asks 4"
    ):
        check_room(nodes, workers=4, cpus=2, gpus=0, where="HEAD:6379")
    with pytest.raises(ClusterError, match=r"at most 4 CPU\(s\) on a node; --cpus-per-worker asks 8"):
        check_room(nodes, workers=1, cpus=8, gpus=0, where="HEAD:6379")
    with pytest.raises(ClusterError, match=r"at most 1 GPU\(s\) on a node; --gpus-per-worker asks 2"):
        check_room(nodes, workers=1, cpus=1, gpus=2, where="HEAD:6379")
    check_room(nodes, workers=1, cpus=1, gpus=1, where="HEAD:6379")
    with pytest.raises(ClusterError, match=r"room for 1 embedding worker"):  # only b has a GPU
        check_room(nodes, workers=2, cpus=1, gpus=1, where="HEAD:6379")
    with pytest.raises(ClusterError, match="no node with a CPU"):
        check_room([NodeRoom("g", cpus=0, gpus=1)], workers=1, cpus=0.5, gpus=1, where="HEAD:6379")
    # Every actor gets batches of a small corpus; a large one goes in batches of 256.
    assert embed_batch_size(168, workers=3) == 14
    assert embed_batch_size(100_000, workers=3) == 256
