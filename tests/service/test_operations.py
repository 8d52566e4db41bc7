"""Operations: Prometheus metrics, one structured log line per request, the page's headers."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ingest.index_store import load_index
from ingest.pipeline import build_index
from service.app import create_app
from service.observability import JsonFormatter
from service.retriever import Retriever
from service.settings import Settings
from tests.conftest import CORPUS, FakeEmbedder


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("operations") / "index"
    build_index(CORPUS, target, FakeEmbedder())
    return target


@pytest.fixture
def client(fake_index: Path) -> Iterator[TestClient]:
    settings = Settings(index_dir=fake_index, api_key="top-secret-key")
    app = create_app(settings, loader=lambda s: Retriever(load_index(s.index_dir), FakeEmbedder()))
    with TestClient(app) as test_client:
        deadline = time.monotonic() + 10
        while test_client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield test_client


AUTH = {"Authorization": "Bearer top-secret-key"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_parse_and_count_requests(client: TestClient) -> None:
    client.post("/ask", json={"question": "Taliban", "mode": "lexical"}, headers=AUTH)
    client.post("/ask", json={"question": "How do I bake bread?"}, headers=AUTH)
    client.post("/ask", json={"question": ""}, headers=AUTH)
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert values[("citeqa_requests_total", (("method", "POST"), ("route", "/ask"), ("status", "200")))] == 2
    assert values[("citeqa_requests_total", (("method", "POST"), ("route", "/ask"), ("status", "422")))] == 1
    assert values[("citeqa_request_seconds_count", (("mode", "lexical"), ("route", "/ask")))] == 1
    assert values[("citeqa_request_seconds_count", (("mode", "hybrid"), ("route", "/ask")))] == 1
    answered = sum(v for (name, _), v in values.items() if name == "citeqa_answers_total")
    assert answered == 2
    assert values[("citeqa_index_items", (("kind", "chunks"),))] > 10
    assert values[("citeqa_ready", ())] == 1


def answers_counted(client: TestClient) -> float:
    values = samples(client.get("/metrics").text)
    return sum(v for (name, _), v in values.items() if name == "citeqa_answers_total")


def test_a_chat_follow_up_counts_one_answer(client: TestClient) -> None:
    # An unanswerable last message is searched again joined to the earlier one: two searches,
    # one answer given, so one answer counted.
    alone = client.post("/ask", json={"question": "How do I bake bread?"}, headers=AUTH).json()
    assert alone["answerable"] is False
    before = answers_counted(client)
    messages = [
        {"role": "user", "content": "Taliban"},
        {"role": "assistant", "content": "The Taliban."},
        {"role": "user", "content": "How do I bake bread?"},
    ]
    response = client.post("/v1/chat/completions", json={"model": "citeqa", "messages": messages}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert answers_counted(client) - before == 1


def test_unmatched_paths_share_one_label(client: TestClient) -> None:
    for n in range(3):
        client.get(f"/no/such/path/{n}")
    values = samples(client.get("/metrics").text)
    routes = {dict(labels)["route"] for (name, labels) in values if name == "citeqa_requests_total"}
    assert "unmatched" in routes and not any(r.startswith("/no/such") for r in routes)


def test_one_json_log_line_per_request_without_the_key(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="citeqa.access"):
        client.post("/ask", json={"question": "Taliban", "k": 3}, headers=AUTH)
        client.get("/healthz")
    records = [r for r in caplog.records if r.name == "citeqa.access"]
    assert len(records) == 2
    lines = [json.loads(JsonFormatter().format(r)) for r in records]
    ask = lines[0]
    assert ask["route"] == "/ask" and ask["status"] == 200 and ask["mode"] == "hybrid" and ask["k"] == 3
    assert ask["latency_ms"] >= 0 and isinstance(ask["answerable"], bool)
    assert lines[1]["route"] == "/healthz"
    assert "top-secret-key" not in caplog.text and "top-secret-key" not in json.dumps(lines)


def test_page_and_assets_have_a_strict_csp(client: TestClient) -> None:
    for path in ("/", "/view/some-doc", "/static/app.js", "/static/view.js", "/static/app.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    page = client.get("/").text
    assert '<script src="/static/app.js"' in page and "<script>" not in page


def test_only_known_assets_are_served(client: TestClient) -> None:
    for name in ("../app.py", "..%2Fapp.py", "index.html", "__init__.py"):
        assert client.get(f"/static/{name}").status_code == 404


def test_page_scripts_never_write_html() -> None:
    web = Path(__file__).resolve().parents[2] / "service" / "web"
    for script in web.glob("*.js"):
        source = script.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, (script.name, sink)
