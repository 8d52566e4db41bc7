"""How index cost grows with the corpus: synthetic vectors and texts at 10k, 100k and 1M items.

Vectors are clustered unit vectors (points scattered around random centres, queries near data
points), which is how sentence embeddings of real text behave; uniformly random vectors have
no neighbours worth the name and would measure nothing an index is for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ingest import vector_index

DIMENSION = 384
QUERIES = 200
LATENCY_QUERIES = 100
HNSW_MAX = 1_000_000  # building HNSW on two cores past this takes longer than the whole benchmark
Say = Callable[[str], None]


def clustered(count: int, seed: int, centres: np.ndarray, spread: float = 0.6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((count, DIMENSION), dtype=np.float32)
    for begin in range(0, count, 100_000):
        size = min(100_000, count - begin)
        points = centres[rng.integers(0, len(centres), size)] + rng.normal(
            0, spread / np.sqrt(DIMENSION), (size, DIMENSION)
        )
        out[begin : begin + size] = points / np.linalg.norm(points, axis=1, keepdims=True)
    return out


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f[:10]) & set(e[:10])) / 10 for f, e in zip(found, exact, strict=True)]))


def single_query_p50_ms(index: Any, queries: np.ndarray) -> float:
    samples = []
    for query in queries[:LATENCY_QUERIES]:
        begun = time.perf_counter()
        index.search(query.reshape(1, -1), 10)
        samples.append((time.perf_counter() - begun) * 1000)
    return float(np.median(samples))


def measure_vectors(count: int, say: Say) -> dict[str, Any]:
    import faiss

    rng = np.random.default_rng(count)
    centres = rng.normal(size=(max(100, count // 500), DIMENSION)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = clustered(count, 1, centres)
    queries = clustered(QUERIES, 2, centres)
    faiss.omp_set_num_threads(2)
    exact_index = faiss.IndexFlatIP(DIMENSION)
    exact_index.add(data)
    _, exact = exact_index.search(queries, 10)
    results: dict[str, Any] = {"count": count, "chosen": vector_index.choose_spec(count)["type"]}
    specs: dict[str, dict[str, Any]] = {
        "flat": {"type": "flat"},
        "hnsw": {"type": "hnsw", "m": 32, "ef_construction": 80, "ef_search": 64},
        "ivf_pq": {"type": "ivf_pq", "nlist": int(4 * np.sqrt(count)), "m": 48, "nprobe": 32},
        "ivf_sq8": {"type": "ivf_sq8", "nlist": int(4 * np.sqrt(count)), "nprobe": 32},
    }
    for name, spec in specs.items():
        if name == "hnsw" and count > HNSW_MAX:
            results[name] = {"skipped": f"not built above {HNSW_MAX:,} vectors on this machine"}
            continue
        say(f"scale: {name} over {count:,} vectors")
        begun = time.perf_counter()
        index = vector_index.configure(vector_index.build(data, spec), spec) if name != "flat" else exact_index
        build_s = time.perf_counter() - begun if name != "flat" else 0.0
        faiss.omp_set_num_threads(1)  # as the service searches: one thread a query
        p50 = single_query_p50_ms(index, queries)
        faiss.omp_set_num_threads(2)
        _, found = index.search(queries, 10)
        results[name] = {
            "build_s": build_s,
            "bytes": int(faiss.serialize_index(index).nbytes),
            "search_p50_ms": p50,
            "recall_at_10": recall_at_10(found, exact),
        }
        del index
    return results


def measure_bm25(count: int, say: Say) -> dict[str, Any]:
    """bm25s over synthetic texts: Zipf-distributed words, 40 a text; saved, loaded with mmap."""
    import tempfile
    from pathlib import Path

    import bm25s

    say(f"scale: bm25s over {count:,} texts")
    rng = np.random.default_rng(count + 7)
    vocabulary = 50_000
    words = np.minimum(rng.zipf(1.3, size=(count, 40)), vocabulary) - 1
    corpus_ids = [row.tolist() for row in words]
    vocab = {f"w{i}": i for i in range(vocabulary)}
    begun = time.perf_counter()
    model = bm25s.BM25()
    model.index((corpus_ids, vocab), show_progress=False)
    build_s = time.perf_counter() - begun
    with tempfile.TemporaryDirectory() as scratch:
        model.save(scratch, show_progress=False)
        size = sum(p.stat().st_size for p in Path(scratch).iterdir())
        del model
        begun = time.perf_counter()
        loaded = bm25s.BM25.load(scratch, mmap=True, show_progress=False)
        load_s = time.perf_counter() - begun
        samples = []
        for _ in range(LATENCY_QUERIES):
            query = [f"w{int(i)}" for i in np.minimum(rng.zipf(1.3, size=4), vocabulary) - 1]
            begun = time.perf_counter()
            loaded.retrieve([query], k=10, show_progress=False)
            samples.append((time.perf_counter() - begun) * 1000)
        del loaded
    return {
        "count": count,
        "build_s": build_s,
        "bytes": size,
        "load_mmap_s": load_s,
        "query_p50_ms": float(np.median(samples)),
    }


def run_scale(sizes: tuple[int, ...], say: Say) -> dict[str, Any]:
    return {
        "vectors": [measure_vectors(size, say) for size in sizes],
        "bm25": [measure_bm25(size, say) for size in sizes],
    }


def scale_markdown(scale: dict[str, Any]) -> str:
    lines = [
        "## Scale (synthetic)",
        "",
        "| vectors | index | build s | size MB | search p50 ms | recall@10 |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in scale["vectors"]:
        for name in ("flat", "hnsw", "ivf_pq", "ivf_sq8"):
            result = row[name]
            chosen = " (chosen)" if name == row["chosen"] else ""
            if "skipped" in result:
                lines.append(f"| {row['count']:,} | {name} | – | – | – | {result['skipped']} |")
                continue
            lines.append(
                f"| {row['count']:,} | {name}{chosen} | {result['build_s']:.1f} | {result['bytes'] / 1e6:.0f} | "
                f"{result['search_p50_ms']:.2f} | {result['recall_at_10']:.3f} |"
            )
    lines += ["", "| texts | bm25s build s | size MB | mmap load s | query p50 ms |", "|---:|---:|---:|---:|---:|"]
    for row in scale["bm25"]:
        lines.append(
            f"| {row['count']:,} | {row['build_s']:.1f} | {row['bytes'] / 1e6:.0f} | {row['load_mmap_s']:.2f} | "
            f"{row['query_p50_ms']:.2f} |"
        )
    return "\n".join(lines)


def plot_scale(scale: dict[str, Any], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for name in ("flat", "hnsw", "ivf_pq", "ivf_sq8"):
        rows = [r for r in scale["vectors"] if "skipped" not in r[name]]
        counts = [r["count"] for r in rows]
        left.plot(counts, [r[name]["search_p50_ms"] for r in rows], marker="o", label=name)
        right.plot(counts, [r[name]["bytes"] / 1e6 for r in rows], marker="o", label=name)
    bm25 = scale["bm25"]
    left.plot([r["count"] for r in bm25], [r["query_p50_ms"] for r in bm25], marker="s", linestyle="--", label="bm25s")
    right.plot([r["count"] for r in bm25], [r["bytes"] / 1e6 for r in bm25], marker="s", linestyle="--", label="bm25s")
    left.set_ylabel("search p50 (ms, one query, one thread)")
    right.set_ylabel("index size (MB)")
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("items")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
