"""The scripted OpenAI-compatible server (a real process) and a citeqa app that reads with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

SCRIPTED = Path(__file__).with_name("scripted_llm.py")


@dataclass
class Scripted:
    url: str  # the base URL, ending in /v1

    def script(self, reply: str, mode: str = "normal", delay: float = 0.0) -> None:
        root = self.url.removesuffix("/v1")
        httpx.post(f"{root}/script", json={"reply": reply, "mode": mode, "delay": delay}, timeout=5).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        root = self.url.removesuffix("/v1")
        return list(httpx.get(f"{root}/requests", timeout=5).json())


def wait_for_models(url: str, process: subprocess.Popen[bytes], within_s: float, name: str) -> None:
    """Until the OpenAI-compatible server at `url` (ending in /v1) lists its models."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, f"{name} did not start"
        time.sleep(0.1)


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) of a `text/event-stream` response of citeqa's, as they come."""
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            assert kind is not None
            yield kind, json.loads(line[6:])


def document_texts(url: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """Every document's text as a served citeqa gives it, by id."""
    listed = httpx.get(f"{url}/documents", headers=headers, timeout=10).json()["documents"]
    return {
        d["doc_id"]: httpx.get(f"{url}/documents/{d['doc_id']}", headers=headers, timeout=10).json()["text"]
        for d in listed
    }


@pytest.fixture(scope="session")
def scripted_llm() -> Iterator[Scripted]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SCRIPTED), str(port)])
    root = f"http://127.0.0.1:{port}"
    try:
        wait_for_models(f"{root}/v1", process, 20, "the scripted LLM")
        yield Scripted(f"{root}/v1")
    finally:
        process.terminate()
        process.wait(timeout=10)


def llama_command(port: int) -> list[str]:
    """`llama_cpp.server` serving the Gemma GGUF that `make test-llm` builds; skips the test
    elsewhere (`make test`), where neither is built."""
    python, model = os.environ.get("CITEQA_LLAMA_PYTHON"), os.environ.get("CITEQA_LLAMA_MODEL")
    if not python or not model:
        pytest.skip("needs the real LLM server: `make test-llm` builds it and runs these tests")
    return [
        python, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "4096", "--n_threads", "2",
    ]  # fmt: skip


@contextmanager
def llama_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real llama-server process; yields its base URL (ending in /v1) and the process."""
    port = free_port()
    process = subprocess.Popen(llama_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_models(url, process, 120, "llama_cpp.server")
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def llama() -> Iterator[str]:
    with llama_server() as (url, _):
        yield url


def assert_checked(written: dict[str, Any], passages: int, documents: dict[str, str]) -> None:
    """What every written answer must hold, whatever the LLM wrote: each citation slices its
    document exactly and supports its sentence; a sentence is supported exactly when it has a
    citation, else it says why; a marker beyond the passages given is dropped, never cited."""
    for number, sentence in enumerate(written["sentences"]):
        assert sentence["supported"] is bool(sentence["citations"])
        assert sentence["supported"] or sentence["reason"]
        for citation in sentence["citations"] + sentence["rejected"]:
            assert documents[citation["doc_id"]][citation["start"] : citation["end"]] == citation["text"]
            assert 1 <= citation["marker"] <= passages and citation["marker"] in sentence["markers"]
        for citation in sentence["citations"]:
            assert citation["supported"] is True
        for citation in sentence["rejected"]:
            assert citation["supported"] is False
        for marker in sentence["markers"]:
            dropped = {"marker": marker, "sentence": number, "reason": f"no passage [{marker}] was given to the LLM"}
            assert (dropped in written["dropped_markers"]) is (not 1 <= marker <= passages)
    if written["status"] == "written":
        assert written["answerable"] and any(s["supported"] for s in written["sentences"])
    if written["status"] in ("unsupported", "declined"):
        assert not written["answerable"]
