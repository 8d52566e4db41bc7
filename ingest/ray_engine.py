"""The Ray engine: parsing and chunking as Ray tasks, embedding in an actor pool (Ray Data map_batches).

The stages are the local engine's functions (`ingest.stages`); only where they run differs. Each
embedding actor builds and verifies its embedder once, from a loader that the driver hands over
(a picklable callable) and, when the query encoder was exported, from the exported files shipped
through Ray's object store. The driver gets the vectors back and writes the index itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding import Embedder, SentenceTransformerEmbedder
from ingest.engines import Progress
from ingest.errors import MissingExtra
from ingest.onnx_documents import OnnxDocumentEmbedder
from ingest.stages import chunk_parsed, parse_file

EMBED_BATCH = 256  # texts per map_batches call: the ONNX embedder buckets them by length inside
EmbedderLoader = Callable[[Path | None], Embedder]  # the exported encoder's folder (or None) -> embedder


def load_document_embedder(
    model_dir: str, expected_sha256: str, threads: int, device: str, encoder: Path | None
) -> Embedder:
    """In a worker: the embedder the local engine uses, its weights verified on this node. A worker
    given a GPU embeds with PyTorch on it (the ONNX Runtime here is the CPU build)."""
    if encoder is None or device != "cpu":
        return SentenceTransformerEmbedder(Path(model_dir), expected_sha256, device=device)
    embedder = OnnxDocumentEmbedder(Path(model_dir), expected_sha256, threads=threads)
    embedder.load(encoder)
    return embedder


def document_embedder_loader(model_dir: Path, expected_sha256: str, threads: int, gpus: float) -> EmbedderLoader:
    return partial(load_document_embedder, str(model_dir), expected_sha256, threads, "cuda" if gpus > 0 else "cpu")


class EmbedActor:
    """One per worker: loads the embedder once, then embeds batch after batch."""

    def __init__(self, load: EmbedderLoader, encoder_files: list[Any]) -> None:
        import ray

        self._scratch = tempfile.TemporaryDirectory(prefix="citeqa-encoder-")
        folder = None
        if encoder_files:
            folder = Path(self._scratch.name) / "encoder"
            for name, data in ray.get(encoder_files[0]).items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
        self._embedder = load(folder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self._embedder.embed_documents([str(text) for text in batch["text"]])
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


class RayEngine:
    name = "ray"

    def __init__(
        self,
        embedder: Embedder,
        load_embedder: EmbedderLoader,
        address: str | None = None,
        workers: int = 1,
        gpus_per_worker: float = 0,
        cpus_per_worker: float = 1,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise MissingExtra("--engine ray needs Ray: pip install -e '.[ray]'") from exc
        self._ray = ray
        self.dimension = embedder.dimension
        self._load = load_embedder  # pickled to the workers: `embedder` (the driver's) may not pickle
        self._workers = workers
        self._gpus = gpus_per_worker
        self._cpus = cpus_per_worker
        self._encoder: list[Any] = []
        self._started_here = not ray.is_initialized()
        if self._started_here:
            ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False)

    def parse(self, paths: list[Path], corpus_dir: Path) -> list[dict[str, Any]]:
        task = self._ray.remote(num_cpus=1)(parse_file)
        result: list[dict[str, Any]] = self._ray.get([task.remote(str(p), str(corpus_dir)) for p in paths])
        return result

    def chunk(
        self, documents: list[dict[str, Any]], settings: dict[str, Any], chrome: list[str]
    ) -> list[dict[str, Any]]:
        task = self._ray.remote(num_cpus=1)(chunk_parsed)
        shared = self._ray.put(chrome)  # one copy in the object store, not one per task
        result: list[dict[str, Any]] = self._ray.get([task.remote(d, settings, shared) for d in documents])
        return result

    def start(self, encoder_dir: Path | None) -> None:
        if encoder_dir is not None:
            files = {
                p.relative_to(encoder_dir).as_posix(): p.read_bytes() for p in encoder_dir.rglob("*") if p.is_file()
            }
            self._encoder = [self._ray.put(files)]

    def embed(self, texts: list[str], stage: str, progress: Progress) -> np.ndarray:
        import ray.data

        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        ray.data.DataContext.get_current().enable_progress_bars = False
        progress(stage, 0, len(texts))
        # Sorted by length so each batch pads little; the row number puts every vector back in place.
        order = sorted(range(len(texts)), key=lambda number: len(texts[number]))
        items = [{"row": number, "text": texts[number]} for number in order]
        dataset = ray.data.from_items(items).map_batches(
            EmbedActor,
            fn_constructor_kwargs={"load": self._load, "encoder_files": self._encoder},
            batch_size=EMBED_BATCH,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self._workers),  # `concurrency=N`, deprecated since 2.51
            num_cpus=self._cpus,
            num_gpus=self._gpus or None,
        )
        done = 0
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            vectors[batch["row"]] = batch["vector"]
            done += len(batch["row"])
            progress(stage, done, len(texts))
        return vectors

    def cluster(self) -> dict[str, Any]:
        resources = self._ray.cluster_resources()  # type: ignore[no-untyped-call]
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        return {
            "nodes": len(nodes),
            "cpus": int(resources.get("CPU", 0)),
            "gpus": int(resources.get("GPU", 0)),
            "workers": self._workers,
            "gpus_per_worker": self._gpus,
        }

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
