"""Bad input, oversized bodies, admission control, timeouts, API key and CORS: a 4xx/5xx with
a message, never a 500."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.index_store import load_index
from ingest.pipeline import build_index
from service.app import create_app
from service.retriever import Answer, Retriever
from service.settings import Settings
from tests.conftest import CORPUS, FakeEmbedder, Server, serve_in_thread


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("reliability") / "index"
    build_index(CORPUS, target, FakeEmbedder())
    return target


class SlowRetriever(Retriever):
    delay_s = 0.0

    def answer(
        self, question: str, k: int = 5, mode: str = "hybrid", signals: Any = None, *, filters: Any = None
    ) -> Answer:
        time.sleep(self.delay_s)
        return super().answer(question, k, mode, signals, filters=filters)


@contextmanager
def make_server(fake_index: Path, delay_s: float = 0.0, **settings: Any) -> Iterator[str]:
    def loader(s: Settings) -> Retriever:
        retriever = SlowRetriever(load_index(s.index_dir), FakeEmbedder())
        retriever.delay_s = delay_s
        return retriever

    app = create_app(Settings(index_dir=fake_index, **settings), loader=loader)
    yield from serve_in_thread(app)


@pytest.fixture(scope="module")
def url(fake_index: Path) -> Iterator[str]:
    with make_server(fake_index) as served:
        yield served


def post_raw(url: str, body: bytes, content_type: str | None = "application/json") -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return httpx.post(f"{url}/ask", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"question": "unterminated', "application/json", 400),
        (b"\xff\xfe\x00not utf-8", "application/json", 400),
        (b"", "application/json", 422),  # no body at all: the question is missing
        (b'["a", "list"]', "application/json", 422),
        (b'"a string"', "application/json", 422),
        (b"null", "application/json", 422),
        (b'{"question": "\\ud800"}', "application/json", 422),
        (b'{"question": "a\\u0000b"}', "application/json", 422),
        (b'{"question": "ok", "k": 1e3}', "application/json", 422),
        (b"question=hello", "application/x-www-form-urlencoded", 415),
        (b'{"question": "hello"}', "text/plain", 415),
        (b'{"question": "hello"}', None, 415),
    ],
)
def test_bad_bodies_get_a_clear_4xx(url: str, body: bytes, content_type: str | None, status: int) -> None:
    response = post_raw(url, body, content_type)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_json_with_charset_is_accepted(url: str) -> None:
    assert post_raw(url, b'{"question": "Taliban"}', "application/json; charset=utf-8").status_code == 200


def test_body_over_the_cap_is_413(url: str) -> None:
    body = b'{"question": "' + b"x" * 20_000 + b'"}'
    assert post_raw(url, body).status_code == 413


def test_huge_declared_body_is_refused_without_reading_it(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10485760\r\n\r\n" + b"{" * 1024
        )
        reply = conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")


def test_chunked_upload_is_cut_off_at_the_cap(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 8192
        status = b""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(1280):  # up to 10 MB, but the server answers long before
                conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        with contextlib.suppress(ConnectionResetError):
            status = conn.recv(4096)
    assert status.startswith(b"HTTP/1.1 413")


TEN_MB_BODY = b'{"question": "' + b"x" * (10 * 1024 * 1024) + b'"}'


def send_whole_body(url: str, client: str) -> tuple[int, str]:
    """Clients that write the whole body before they read a byte of the answer, asking the server
    to close after it (urllib always does): the status and detail they end up with."""
    headers = {"Content-Type": "application/json", "Connection": "close"}
    if client == "urllib":
        request = urllib.request.Request(f"{url}/ask", data=TEN_MB_BODY, headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        return refused.value.code, json.loads(refused.value.read())["detail"]
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        if client == "http.client chunked":
            pieces = (TEN_MB_BODY[i : i + 65536] for i in range(0, len(TEN_MB_BODY), 65536))
            conn.request("POST", "/ask", body=pieces, headers=headers, encode_chunked=True)
        else:
            conn.request("POST", "/ask", body=TEN_MB_BODY, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())["detail"]
    finally:
        conn.close()


@pytest.mark.integration
@pytest.mark.server
@pytest.mark.parametrize("client", ["urllib", "http.client", "http.client chunked"])
def test_client_that_sends_the_whole_body_reads_the_413(server: Server, client: str) -> None:
    # Against the real `citeqa serve` process: the server answers 413 early, then reads and
    # discards the rest of the body before closing, so the client is not reset mid-upload.
    status, detail = send_whole_body(server.url, client)
    assert status == 413
    assert "larger than" in detail


@pytest.mark.parametrize("path", ["/documents/..%2F..%2Fetc%2Fpasswd", "/documents/%2e%2e", "/documents/manifest.json"])
def test_document_traversal_is_404(url: str, path: str) -> None:
    assert httpx.get(url + path, timeout=10).status_code == 404


def test_cors_is_closed_by_default(url: str) -> None:
    response = httpx.options(
        f"{url}/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, timeout=10
    )
    assert "access-control-allow-origin" not in response.headers


def test_cors_can_be_opened(fake_index: Path) -> None:
    with make_server(fake_index, cors_origins=["https://ok.example"]) as served:
        response = httpx.options(
            f"{served}/ask",
            headers={"Origin": "https://ok.example", "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert response.headers["access-control-allow-origin"] == "https://ok.example"


def test_api_key(fake_index: Path) -> None:
    with make_server(fake_index, api_key="s3cret") as served:
        ask = {"question": "Taliban"}
        assert httpx.post(f"{served}/ask", json=ask, timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{served}/ask", json=ask, headers=wrong, timeout=10).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        assert httpx.post(f"{served}/ask", json=ask, headers=right, timeout=10).status_code == 200
        document_id = httpx.post(f"{served}/ask", json=ask, headers=right, timeout=10).json()["passages"][0][
            "citation"
        ]["doc_id"]
        assert httpx.get(f"{served}/documents/{document_id}", timeout=10).status_code == 401
        assert httpx.get(f"{served}/documents/{document_id}", headers=right, timeout=10).status_code == 200
        assert httpx.get(f"{served}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{served}/readyz", timeout=10).status_code == 200


def test_overload_is_refused_quickly_with_retry_after(fake_index: Path) -> None:
    with make_server(fake_index, delay_s=0.5, max_running=1, max_waiting=1) as served:

        def ask(_: int) -> tuple[int, float, str | None]:
            started = time.perf_counter()
            response = httpx.post(f"{served}/ask", json={"question": "Taliban"}, timeout=30)
            return response.status_code, time.perf_counter() - started, response.headers.get("retry-after")

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(ask, range(8)))
        refused = [r for r in results if r[0] == 503]
        assert [r[0] for r in results].count(200) >= 2
        assert len(refused) >= 4
        assert all(r[2] == "1" for r in refused)
        assert max(r[1] for r in refused) < min(r[1] for r in results if r[0] == 200)
        # /healthz is served by the event loop, not the busy search threads.
        assert httpx.get(f"{served}/healthz", timeout=5).status_code == 200


def test_slow_search_is_cut_off_with_504(fake_index: Path) -> None:
    with make_server(fake_index, delay_s=1.0, request_timeout_s=0.2) as served:
        started = time.perf_counter()
        response = httpx.post(f"{served}/ask", json={"question": "Taliban"}, timeout=30)
        assert response.status_code == 504 and "longer than" in response.json()["detail"]
        assert time.perf_counter() - started < 1.0
