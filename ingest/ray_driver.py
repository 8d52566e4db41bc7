"""The Ray driver process: connects to Ray, checks the cluster, and runs the ingest stages there.

`citeqa ingest --engine ray` runs this module in a child process (`ingest.ray_engine.RayEngine`
speaks to it over a pipe) because a Ray driver does not behave as a library inside the CLI: its
core worker ends the whole process when the raylet it is attached to dies (a killed head: no
`finally` runs, the temporary encoder folder stays), `ray.init` against a dead address retries for
minutes with SIGINT ignored, and Ray's C++ and Ray Data loggers write to the process's stdout and
stderr. Here all of that stays in this process, whose output goes to a log file; the CLI can always
answer with one line, clean up and stop this process.

Messages are tuples: the parent sends (request, arguments); this process answers ("progress",
stage, done, total)... then ("result", value), ("raise", a CiteqaError) or ("error", one line).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any

import cloudpickle
import numpy as np
import ray
import ray.data

from ingest import errors
from ingest.engines import Progress
from ingest.errors import CiteqaError, ClusterError
from ingest.onnx_documents import DOCUMENT_ENCODER_FILES
from ingest.ray_engine import REFUSED, DriverConfig, EmbedderLoader, why_unanswered
from ingest.stages import chunk_parsed, parse_file

EMBED_BATCH = 256  # most texts per map_batches call: the ONNX embedder buckets them by length inside
BATCHES_PER_WORKER = 4  # a small corpus is still cut so that every actor gets batches (and a lost one little)
EMBED_ACTOR = "MapWorker(MapBatches(EmbedActor))"  # Ray Data's name for the actors of the pool


@dataclass(frozen=True)
class NodeRoom:
    node_id: str
    cpus: float
    gpus: float


def check_room(nodes: list[NodeRoom], workers: int, cpus: float, gpus: float, where: str) -> None:
    """Refuse, before any work, an ingest that the cluster cannot run: Ray would otherwise wait for
    resources for ever (Ray Data warns, the ingest never ends)."""
    if not any(node.cpus >= 1 for node in nodes):
        raise ClusterError(f"the Ray cluster at {where} has no node with a CPU to parse documents on")
    most_cpus = max(node.cpus for node in nodes)
    most_gpus = max(node.gpus for node in nodes)
    if gpus > most_gpus:
        have = f"at most {most_gpus:g} GPU(s) on a node" if most_gpus else "no GPU"
        raise ClusterError(f"the Ray cluster at {where} has {have}; --gpus-per-worker asks {gpus:g}")
    if cpus > most_cpus:
        raise ClusterError(
            f"the Ray cluster at {where} has at most {most_cpus:g} CPU(s) on a node; --cpus-per-worker asks {cpus:g}"
        )
    room = sum(min(math.floor(node.cpus / cpus), math.floor(node.gpus / gpus) if gpus else math.inf) for node in nodes)
    if room < workers:
        raise ClusterError(
            f"the Ray cluster at {where} has room for {room:g} embedding worker(s) of {cpus:g} CPU(s) and "
            f"{gpus:g} GPU(s); --workers asks {workers}"
        )


def embed_batch_size(texts: int, workers: int) -> int:
    return max(1, min(EMBED_BATCH, math.ceil(texts / (workers * BATCHES_PER_WORKER))))


class EmbedActor:
    """One per worker: loads the embedder once, then embeds batch after batch."""

    def __init__(self, load: EmbedderLoader, encoder_files: list[Any]) -> None:
        # Loaded from the object store's bytes, not from a folder: an actor killed while loading
        # (its node lost, the ingest stopped) runs no finaliser, and would leave 90 MB on its disk.
        self._embedder = load(ray.get(encoder_files[0]) if encoder_files else None)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self._embedder.embed_documents([str(text) for text in batch["text"]])
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


class RayDriver:
    """The stages on Ray, for one ingest: what the parent's RayEngine asks for, done here."""

    def __init__(self, config: DriverConfig) -> None:
        self._config = config
        self._where = config.address or "this machine"
        self._encoder: list[Any] = []
        # Ray's own logs go to this process's stderr, which is the log file (or citeqa's stderr with --verbose).
        ray.init(address=config.address, log_to_driver=True, include_dashboard=False)
        nodes = self._nodes()
        check_room(nodes, config.workers, config.cpus_per_worker, config.gpus_per_worker, self._where)
        self._started_nodes = {node.node_id for node in nodes}
        self.started = {
            "nodes": len(nodes),
            "cpus": int(sum(node.cpus for node in nodes)),
            "gpus": int(sum(node.gpus for node in nodes)),
            "workers": config.workers,
            "gpus_per_worker": config.gpus_per_worker,
        }

    @staticmethod
    def _nodes() -> list[NodeRoom]:
        alive = [node for node in ray.nodes() if node.get("Alive")]  # type: ignore[no-untyped-call]
        return [
            NodeRoom(node["NodeID"], node["Resources"].get("CPU", 0.0), node["Resources"].get("GPU", 0.0))
            for node in alive
        ]

    @staticmethod
    def _running_node_ids() -> set[str]:
        """Nodes that the GCS reports alive and whose raylet still accepts a connection: Ray marks
        a killed node dead only after its health checks fail (15-30 s by default), and an ingest
        that ends sooner would count a node lost during it as alive."""
        running = set()
        for node in ray.nodes():  # type: ignore[no-untyped-call]
            if not node.get("Alive"):
                continue
            address, port = node.get("NodeManagerAddress"), node.get("NodeManagerPort")
            if address and port and why_unanswered((str(address), int(port)), 2.0) == REFUSED:
                continue
            running.add(str(node["NodeID"]))
        return running

    def parse(self, paths: list[Path], corpus_dir: Path) -> list[dict[str, Any]]:
        task = ray.remote(num_cpus=1)(parse_file)
        result: list[dict[str, Any]] = ray.get([task.remote(str(p), str(corpus_dir)) for p in paths])
        return result

    def chunk(
        self, documents: list[dict[str, Any]], settings: dict[str, Any], chrome: list[str]
    ) -> list[dict[str, Any]]:
        task = ray.remote(num_cpus=1)(chunk_parsed)
        shared = ray.put(chrome)  # one copy in the object store, not one per task
        result: list[dict[str, Any]] = ray.get([task.remote(d, settings, shared) for d in documents])
        return result

    def start(self, encoder_dir: Path | None) -> None:
        if encoder_dir is not None:
            self._encoder = [ray.put({name: (encoder_dir / name).read_bytes() for name in DOCUMENT_ENCODER_FILES})]

    def embed(self, texts: list[str], stage: str, progress: Progress) -> np.ndarray:
        config = self._config
        vectors = np.zeros((len(texts), config.dimension), dtype=np.float32)
        if not texts:
            return vectors
        ray.data.DataContext.get_current().enable_progress_bars = False
        progress(stage, 0, len(texts))
        # Sorted by length so each batch pads little; the row number puts every vector back in place.
        order = sorted(range(len(texts)), key=lambda number: len(texts[number]))
        items = [{"row": number, "text": texts[number]} for number in order]
        dataset = ray.data.from_items(items).map_batches(
            EmbedActor,
            fn_constructor_kwargs={"load": config.load, "encoder_files": self._encoder},
            batch_size=embed_batch_size(len(texts), config.workers),
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=config.workers),  # `concurrency=N`, deprecated since 2.51
            num_cpus=config.cpus_per_worker,
            num_gpus=config.gpus_per_worker or None,
        )
        done = 0
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            vectors[batch["row"]] = batch["vector"]
            done += len(batch["row"])
            progress(stage, done, len(texts))
        return vectors

    def cluster(self) -> dict[str, Any]:
        """The cluster as the ingest started, and what happened to it since: nodes lost, and the
        embedding actors Ray restarted or replaced after one died."""
        actors = _actor_history(self._config.workers)
        alive = self._running_node_ids()
        during: dict[str, Any] = {
            "nodes_lost": len(self._started_nodes - alive),
            "nodes_joined": len(alive - self._started_nodes),
        }
        during |= actors
        return {**self.started, "during": during}

    def close(self) -> None:
        if ray.is_initialized():
            ray.shutdown()


def _actor_history(workers: int) -> dict[str, int]:
    """Embedding actors started and restarted by this job, from the GCS's actor table (a developer
    API of Ray: when it changes, the manifest leaves these counts out rather than fail an ingest)."""
    try:
        from ray._private.state import actors

        job = ray.JobID.from_hex(ray.get_runtime_context().get_job_id())
        table = [a for a in actors(job_id=job).values() if a["ActorClassName"].endswith(EMBED_ACTOR)]
    except Exception:  # only bookkeeping is lost
        return {}
    return {
        "embed_actors_started": len(table),
        "embed_actors_replaced": max(0, len(table) - workers),
        "embed_actor_restarts": sum(int(a["NumRestarts"]) for a in table),
    }


def _domain_error(exc: BaseException) -> CiteqaError | None:
    """The citeqa error a task or actor raised, under Ray's wrappers. An actor that fails in its
    constructor (weights that do not verify) reaches the driver as an ActorDiedError that keeps the
    original only as text, so the text is read too: `ingest.errors.ModelMismatch: <message>`."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, CiteqaError):
            return current
        current = getattr(current, "cause", None) or current.__cause__
    for name, message in reversed(re.findall(r"\b(\w+): (.+)", _plain(str(exc)))):
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, CiteqaError):
            return kind(message.strip())
    return None


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # Ray colours its messages even when they go to a file


def _answer_error(conn: Connection, exc: BaseException) -> None:
    domain = _domain_error(exc)
    if domain is not None:
        conn.send(("raise", domain))
        return
    lines = [line.strip() for line in _plain(str(exc)).splitlines() if line.strip()]
    first = lines[0] if lines else "no message"
    conn.send(("error", f"{type(exc).__name__}: {first[:300]}"))


def _die_with_parent() -> None:
    """SIGTERM when the CLI's process dies, however it dies: no driver is left holding the cluster."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the parent's close() still stops us
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, so ray.shutdown() stops a local Ray


def serve(conn: Connection) -> int:
    # From the citeqa process that started this one, over the socket pair it handed down: nothing
    # else can write there (tests/test_no_pickle.py names this as its one exception).
    config: DriverConfig = cloudpickle.loads(conn.recv_bytes())
    try:
        driver = RayDriver(config)
    except Exception as exc:  # answered to the parent, which decides
        _answer_error(conn, exc)
        return 1
    try:
        conn.send(("ready", driver.started))

        def progress(stage: str, done: int, total: int) -> None:
            conn.send(("progress", stage, done, total))

        requests: dict[str, Callable[..., Any]] = {
            "parse": driver.parse,
            "chunk": driver.chunk,
            "start": driver.start,
            "embed": lambda texts, stage: driver.embed(texts, stage, progress),
            "cluster": driver.cluster,
        }
        while True:
            try:
                name, arguments = conn.recv()
            except EOFError:
                return 0
            if name == "close":
                return 0
            try:
                conn.send(("result", requests[name](*arguments)))
            except Exception as exc:  # the parent turns it into one line
                _answer_error(conn, exc)
    finally:
        driver.close()


def main(argv: list[str]) -> int:
    _die_with_parent()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the CLI's process decides what Ctrl-C does
    return serve(Connection(int(argv[1])))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
