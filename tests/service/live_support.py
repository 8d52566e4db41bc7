"""Helpers for the live-corpus tests: a writable copy of the real index, and real servers over it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import CITEQA, CORPUS, REPO, Server, citeqa_env, free_port


def live_copy(real_index: Path, folder: Path) -> tuple[Path, Path]:
    """The article's corpus and its real index (with its embedding cache), copied where writes may land."""
    corpus, index = folder / "corpus", folder / "index"
    shutil.copytree(CORPUS, corpus)
    shutil.copytree(real_index, index)
    cache = real_index.with_name(f"{real_index.name}.cache")
    if cache.exists():
        shutil.copytree(cache, index.with_name("index.cache"))
    return corpus, index


@contextmanager
def live_server(
    corpus: Path, index: Path, *extra: str, timeout: float = 90, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`citeqa serve` with writes on, as a real process on loopback; stopped at the end."""
    from eval.bench.load import started

    port = free_port()
    settings = {"CITEQA_ALLOW_WRITES": "true", "CITEQA_LIVE_POLL_S": "0.5", **(env or {})}
    command = [*CITEQA, "serve", "--index", str(index), "--corpus", str(corpus), "--port", str(port), *extra]
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "serve.log"
        with started(command, port, REPO, citeqa_env(**settings), timeout, log) as running:
            yield Server(running.url, running.process, log)


def wait_idle(url: str, timeout: float = 60) -> dict[str, object]:
    """GET /index until the queue is empty, the writer idle and this worker serving its last build."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(f"{url}/index", timeout=5).json()
        writer = status["writer"]
        built = (writer.get("last_build") or {}).get("applied_seq", 0)
        if not status["queue"] and writer.get("state") == "idle" and status["applied_seq"] >= built:
            return dict(status)
        assert time.monotonic() < deadline, f"index never settled: {status}"
        time.sleep(0.1)
