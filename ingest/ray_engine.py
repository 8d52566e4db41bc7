"""The Ray engine: parsing and chunking as Ray tasks, embedding in an actor pool (Ray Data map_batches).

The stages are the local engine's functions (`ingest.stages`); only where they run differs. The Ray
driver itself runs in a child process (`ingest.ray_driver` says why): this side starts it, waits on
it within bounds, relays its progress, turns its failures into one-line `ClusterError`s, and stops
it. Each embedding actor builds and verifies its embedder once, from a loader handed over by the
driver (a picklable callable) and, when the query encoder was exported, from the exported files
shipped through Ray's object store. The CLI's process gets the vectors back and writes the index.
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ingest.embedding import Embedder, SentenceTransformerEmbedder
from ingest.engines import Progress
from ingest.errors import ClusterError, MissingExtra
from ingest.onnx_documents import OnnxDocumentEmbedder

EmbedderLoader = Callable[[Mapping[str, bytes] | None], Embedder]  # the exported encoder's files (or None) -> embedder
CONNECT_TIMEOUT_S = 30.0  # the CLI's default --ray-connect-timeout
STOP_GRACE_S = 5.0  # a driver given SIGTERM gets this long to let go of Ray (a local Ray stops with it)
WATCH_EVERY_S = 2.0  # how often the head's port is checked while the driver works
# A refused connection means the head's machine answers and nothing listens on the GCS port: the GCS
# process is gone (a `ray start` head does not restart it), so this is long enough to believe it. A
# head that does not answer at all (a network cut) gets the whole --ray-connect-timeout.
REFUSED_FOR_S = 5.0
REFUSED = "Connection refused"
CODE_ROOT = Path(__file__).resolve().parents[1]  # the driver imports this checkout, like this process


def load_document_embedder(
    model_dir: str, expected_sha256: str, threads: int, device: str, encoder: Mapping[str, bytes] | None
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


@dataclass(frozen=True)
class DriverConfig:
    """What the driver process needs (sent to it with cloudpickle: a test's loader may be a lambda)."""

    address: str | None
    load: EmbedderLoader
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    dimension: int


def gcs_endpoint(address: str | None) -> tuple[str, int] | None:
    """HEAD:PORT as a TCP endpoint to watch; None for a local Ray or an address Ray resolves itself."""
    if not address or "://" in address:
        return None
    host, _, port = address.rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def why_unanswered(endpoint: tuple[str, int], timeout: float) -> str | None:
    """None when something accepts a TCP connection there, else why not ('Connection refused', ...)."""
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            return None
    except ConnectionRefusedError:
        return REFUSED
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or str(exc)


def _auth_hint(address: str | None) -> str:
    if address is None or os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ""
    return "; a cluster started with `ray start` may ask for token authentication: RAY_AUTH_MODE=token and its token"


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
        connect_timeout: float = CONNECT_TIMEOUT_S,
        log_file: Path | None = None,
        verbose: bool = False,
    ) -> None:
        if importlib.util.find_spec("ray") is None:
            raise MissingExtra("--engine ray needs Ray: pip install -e '.[ray]'")
        self._address = address
        self._where = address or "this machine"
        self._timeout = connect_timeout
        self._endpoint = gcs_endpoint(address)
        self._log = None if verbose else (log_file or Path(tempfile.gettempdir()) / f"citeqa-ray-{os.getpid()}.log")
        self._busy = False
        self._head_lost = False
        self._silent_since: float | None = None
        if self._endpoint is not None:  # nothing listening: say so now, not after Ray's minutes of retries
            reason = why_unanswered(self._endpoint, connect_timeout)
            if reason is not None:
                raise ClusterError(f"cannot reach the Ray cluster at {address}: {reason}")
        config = DriverConfig(address, load_embedder, workers, cpus_per_worker, gpus_per_worker, embedder.dimension)
        self._start_driver(config)
        self._busy = True  # until the driver is ready it reads no request: close() stops it instead
        try:
            self.started: dict[str, Any] = self._await("connecting", deadline=time.monotonic() + connect_timeout)
        except BaseException:
            self.close()
            raise
        self._busy = False

    def _start_driver(self, config: DriverConfig) -> None:
        import cloudpickle  # Ray's own dependency: present whenever Ray is

        self._conn, child = multiprocessing.Pipe()
        log = self._log.open("wb") if self._log else None
        output = log.fileno() if log else sys.stderr.fileno()
        path = os.pathsep.join(p for p in (str(CODE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        try:
            # A session of its own: a Ctrl-C at the terminal reaches this process only, which stops the driver.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ingest.ray_driver", str(child.fileno())],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                env={**os.environ, "PYTHONPATH": path},
                start_new_session=True,
            )
        finally:
            child.close()
            if log:
                log.close()
        self._conn.send_bytes(cloudpickle.dumps(config))

    def _see_log(self) -> str:
        return f" (Ray's log: {self._log})" if self._log else " (Ray's output is above)"

    def _lost(self, what: str) -> ClusterError:
        try:
            code = self._process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            code = None
        if self._endpoint is not None and why_unanswered(self._endpoint, 2.0) is not None:
            reason = "its head stopped answering"
        else:
            reason = f"the Ray driver process ended (exit code {code})"
        return ClusterError(f"the Ray cluster at {self._where} failed while {what}: {reason}{self._see_log()}")

    def _watch_head(self, what: str) -> None:
        """The driver may wait a long while on a head that is gone (Ray retries the GCS for a minute
        or more); the head's port is the quicker sign."""
        assert self._endpoint is not None
        reason = why_unanswered(self._endpoint, min(2.0, self._timeout))
        if reason is None:
            self._silent_since = None
            return
        now = time.monotonic()
        self._silent_since = self._silent_since or now
        patience = min(REFUSED_FOR_S, self._timeout) if reason == REFUSED else self._timeout
        if now - self._silent_since >= patience:
            self._head_lost = True
            raise ClusterError(
                f"the Ray cluster at {self._where} failed while {what}: its head stopped answering "
                f"({reason} for {now - self._silent_since:.0f} s){self._see_log()}"
            )

    def _await(self, what: str, progress: Progress | None = None, deadline: float | None = None) -> Any:
        watched = time.monotonic()
        while True:
            if self._conn.poll(0.2):
                try:
                    kind, *body = self._conn.recv()
                except EOFError:
                    raise self._lost(what) from None
                if kind == "progress" and progress is not None:
                    progress(*body)
                elif kind in ("ready", "result"):
                    return body[0]
                elif kind == "raise":
                    raise body[0]
                elif kind == "error":
                    hint = _auth_hint(self._address) if what == "connecting" else ""
                    raise ClusterError(
                        f"the Ray cluster at {self._where} failed while {what}: {body[0]}{hint}{self._see_log()}"
                    )
                continue
            if self._process.poll() is not None:
                raise self._lost(what)
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise ClusterError(
                    f"cannot connect to the Ray cluster at {self._where} within {self._timeout:g} s "
                    f"(--ray-connect-timeout){_auth_hint(self._address)}{self._see_log()}"
                )
            if self._endpoint is not None and now - watched >= WATCH_EVERY_S:
                watched = now
                self._watch_head(what)

    def _call(self, what: str, request: str, *arguments: Any, progress: Progress | None = None) -> Any:
        self._busy = True
        self._conn.send((request, arguments))
        answer = self._await(what, progress)
        self._busy = False
        return answer

    def parse(self, paths: list[Path], corpus_dir: Path) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("parsing", "parse", paths, corpus_dir)
        return result

    def chunk(
        self, documents: list[dict[str, Any]], settings: dict[str, Any], chrome: list[str]
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("chunking", "chunk", documents, settings, chrome)
        return result

    def start(self, encoder_dir: Path | None) -> None:
        self._call("sending the encoder", "start", encoder_dir)

    def embed(self, texts: list[str], stage: str, progress: Progress) -> np.ndarray:
        vectors: np.ndarray = self._call("embedding", "embed", texts, stage, progress=progress)
        return vectors

    def cluster(self) -> dict[str, Any]:
        """The cluster as the ingest started (nodes, CPUs, GPUs) and what happened during it."""
        result: dict[str, Any] = self._call("reading the cluster's state", "cluster")
        return result

    def close(self) -> None:
        """Ask the driver to let go of Ray; one that is busy (an interrupted ingest) or deaf is stopped."""
        process = self._process
        if process.poll() is None and not self._busy:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._conn.send(("close", ()))
                process.wait(timeout=3 * STOP_GRACE_S)
        if process.poll() is None and not self._head_lost:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_GRACE_S)
        if process.poll() is None:  # with its head gone, a driver's shutdown only waits on the head
            process.kill()
            process.wait()
        self._conn.close()
