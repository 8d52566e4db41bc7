"""The HTTP contract in process, over a fake-embedder index: shapes, validation, readiness."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest.index_store import load_index
from ingest.pipeline import build_index
from service.app import create_app
from service.retriever import Retriever
from service.schemas import AskResponse
from service.settings import Settings
from tests.conftest import CORPUS, FakeEmbedder


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("api") / "index"
    build_index(CORPUS, target, FakeEmbedder())
    return target


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 10
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def client(fake_index: Path) -> Iterator[TestClient]:
    app = create_app(
        Settings(index_dir=fake_index), loader=lambda s: Retriever(load_index(s.index_dir), FakeEmbedder())
    )
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def test_ask_shape_and_exact_citations(client: TestClient) -> None:
    response = client.post("/ask", json={"question": "Why did ISIS attack Russia?", "k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["question"] == "Why did ISIS attack Russia?" and body["mode"] == "hybrid"
    assert isinstance(body["answerable"], bool)
    AskResponse.model_validate(body)  # the documented response model holds every answer
    assert isinstance(body["took_ms"], float)
    assert [p["rank"] for p in body["passages"]] == [1, 2, 3]
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True)
    for passage in body["passages"]:
        citation = passage["citation"]
        document = client.get(f"/documents/{citation['doc_id']}").json()
        assert document["text"][citation["start"] : citation["end"]] == passage["text"]
        assert set(citation) == {
            "doc_id",
            "title",
            "source",
            "format",
            "section",
            "speaker",
            "start",
            "end",
            "page",
            "pages",
            "also_in",
        }
        answer = passage["answer"]
        assert citation["page"] is None and citation["pages"] is None and answer["page"] is None  # plain text
        assert document["text"][answer["start"] : answer["end"]] == answer["text"]
        assert citation["start"] <= answer["start"] < answer["end"] <= citation["end"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_mode_answers(client: TestClient, mode: str) -> None:
    body = client.post("/ask", json={"question": "Taliban embassy in Kabul", "k": 4, "mode": mode}).json()
    assert body["mode"] == mode and len(body["passages"]) == 4


def test_integral_float_k_is_an_integer(client: TestClient) -> None:
    assert len(client.post("/ask", json={"question": "Taliban", "k": 3.0}).json()["passages"]) == 3


def test_question_is_trimmed(client: TestClient) -> None:
    body = client.post("/ask", json={"question": "  Taliban  "}).json()
    assert body["question"] == "Taliban" and len(body["passages"]) == 5


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"question": ""},
        {"question": "   "},
        {"question": None},
        {"question": ["a list"]},
        {"question": 42},
        {"question": "x" * 1001},
        {"question": "ok", "k": 0},
        {"question": "ok", "k": 51},
        {"question": "ok", "k": "5"},
        {"question": "ok", "k": 2.5},
        {"question": "ok", "k": 1e300},
        {"question": "ok", "k": True},
        {"question": "ok", "mode": "psychic"},
        {"question": "ok", "extra": 1},
        {"question": "bell\u0007"},
    ],
)
def test_invalid_requests_are_422(client: TestClient, payload: dict[str, object]) -> None:
    response = client.post("/ask", json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]


def test_lone_surrogate_is_422_not_500(client: TestClient) -> None:
    response = client.post("/ask", content=b'{"question": "\\ud800"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_unknown_document_is_404(client: TestClient) -> None:
    assert client.get("/documents/no-such-doc").status_code == 404


def test_health_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert "/ask" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_not_ready_until_loaded(fake_index: Path) -> None:
    gate = threading.Event()

    def slow_loader(settings: Settings) -> Retriever:
        gate.wait(10)
        return Retriever(load_index(settings.index_dir), FakeEmbedder())

    with TestClient(create_app(Settings(index_dir=fake_index), loader=slow_loader)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.post("/ask", json={"question": "anything"}).status_code == 503
        gate.set()
        wait_ready(client)
        assert client.post("/ask", json={"question": "anything"}).status_code == 200


def test_load_failure_is_reported(tmp_path: Path) -> None:
    reported: list[str] = []
    app = create_app(
        Settings(index_dir=tmp_path / "missing"),
        loader=lambda s: Retriever(load_index(s.index_dir), FakeEmbedder()),
        on_load_failure=reported.append,
    )
    with TestClient(app) as client:
        deadline = time.monotonic() + 5
        while not reported and time.monotonic() < deadline:
            time.sleep(0.02)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "not found" in response.json()["detail"]
    assert reported and "index directory not found" in reported[0]
