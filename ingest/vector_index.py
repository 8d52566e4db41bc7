"""Dense vector indexes: the type is chosen by corpus size and recorded in the manifest, and
the service configures whichever it finds."""

from __future__ import annotations

from typing import Any

import numpy as np

# Measured by `citeqa bench --scale` on 2 cores (docs/performance.md, "Scale"): exact search stays under
# a few milliseconds up to about this many vectors; beyond, an inverted file answers faster.
FLAT_MAX = 50_000


def choose_spec(count: int) -> dict[str, Any]:
    if count <= FLAT_MAX:
        return {"type": "flat"}
    # About 4·sqrt(n) lists, 8-bit scalar quantisation, 32 lists probed: ≥0.95 recall@10 in
    # the scale benchmark with a fraction of flat's search time.
    nlist = int(4 * np.sqrt(count))
    return {"type": "ivf_sq8", "nlist": nlist, "nprobe": 32}


def build(vectors: np.ndarray, spec: dict[str, Any]) -> Any:
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = int(vectors.shape[1])
    kind = spec["type"]
    index: Any
    if kind == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, int(spec.get("m", 32)), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(spec.get("ef_construction", 80))
    elif kind in ("ivf_sq8", "ivf_pq"):
        quantizer = faiss.IndexFlatIP(dimension)
        if kind == "ivf_sq8":
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, dimension, int(spec["nlist"]), faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            index = faiss.IndexIVFPQ(
                quantizer, dimension, int(spec["nlist"]), int(spec.get("m", 48)), 8, faiss.METRIC_INNER_PRODUCT
            )
        sample = vectors[np.random.default_rng(0).permutation(len(vectors))[: max(int(spec["nlist"]) * 40, 10_000)]]
        index.train(sample)
    else:
        raise ValueError(f"unknown dense index type '{kind}'")
    index.add(vectors)
    return index


def configure(index: Any, spec: dict[str, Any]) -> Any:
    """Search-time parameters, and a direct map so that answer sentences can be reconstructed."""
    import faiss

    kind = spec.get("type", "flat")
    if kind in ("ivf_sq8", "ivf_pq"):
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = int(spec.get("nprobe", 32))
        ivf.make_direct_map()
    elif kind == "hnsw":
        index.hnsw.efSearch = int(spec.get("ef_search", 64))
    return index
