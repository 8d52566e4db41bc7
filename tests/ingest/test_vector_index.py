"""Every dense index type builds, searches close to exact, and is served by the Retriever."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest import vector_index
from ingest.index_store import load_index
from ingest.pipeline import build_index
from service.retriever import Retriever
from tests.conftest import CORPUS, FakeEmbedder


def clustered(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, 32))
    points = centres[rng.integers(0, 20, count)] + rng.normal(0, 0.3, (count, 32))
    normalised: np.ndarray = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    return normalised


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "flat"},
        {"type": "hnsw", "m": 32, "ef_construction": 80, "ef_search": 256},
        {"type": "ivf_sq8", "nlist": 16, "nprobe": 8},
        {"type": "ivf_pq", "nlist": 16, "m": 8, "nprobe": 8},
    ],
)
def test_index_types_find_the_exact_neighbours(spec: dict[str, object]) -> None:
    data, queries = clustered(4000, 1), clustered(50, 2)
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    index = vector_index.configure(vector_index.build(data, spec), spec)
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    floors = {"flat": 1.0, "hnsw": 0.95, "ivf_sq8": 0.9, "ivf_pq": 0.3}  # PQ alone is lossy (docs/performance.md)
    assert recall >= floors[str(spec["type"])], recall
    if spec["type"] != "ivf_pq":
        np.testing.assert_allclose(index.reconstruct(int(found[0][0])), data[found[0][0]], atol=0.02)


def test_choice_follows_size() -> None:
    assert vector_index.choose_spec(10)["type"] == "flat"
    assert vector_index.choose_spec(vector_index.FLAT_MAX)["type"] == "flat"
    big = vector_index.choose_spec(1_000_000)
    assert big["type"] == "ivf_sq8" and big["nlist"] == 4000 and big["nprobe"] >= 16


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dense index type"):
        vector_index.build(clustered(10, 1), {"type": "magic"})


def test_the_service_serves_an_inverted_file_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_index, "FLAT_MAX", 5)
    monkeypatch.setattr(
        vector_index,
        "choose_spec",
        lambda n: {"type": "flat"} if n <= 5 else {"type": "ivf_sq8", "nlist": 4, "nprobe": 4},
    )
    build_index(CORPUS, tmp_path / "index", FakeEmbedder())
    index = load_index(tmp_path / "index")
    assert index.manifest["dense_index"]["type"] == "ivf_sq8"
    assert index.manifest["sentence_index"]["type"] == "ivf_sq8"
    flat_index = tmp_path / "flat"
    monkeypatch.setattr(vector_index, "choose_spec", lambda n: {"type": "flat"})
    build_index(CORPUS, flat_index, FakeEmbedder())
    ivf, flat = Retriever(index, FakeEmbedder()), Retriever(load_index(flat_index), FakeEmbedder())
    for question in ("Taliban embassy in Kabul", "gas plant in Syria", "Wagner Group"):
        ivf_hits, flat_hits = ivf.search(question, 3, "dense"), flat.search(question, 3, "dense")
        # nprobe covers every list here, so the inverted file must agree with exact search.
        assert [h.chunk.chunk_id for h in ivf_hits] == [h.chunk.chunk_id for h in flat_hits]
        assert all(h.answer is not None for h in ivf.search(question, 3))
