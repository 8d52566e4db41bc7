"""The MCP server with the SDK's own client, without an LLM: `citeqa mcp` over stdio as a real
process, and Streamable HTTP at /mcp of a real server, with and without the API key. Every
citation slices its document exactly, get_passage gives a citation's text back, and bad input
is a tool error (isError), never a crash."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mcp import Client, MCPError

from service.app import create_app
from service.display import Displays
from service.guards import SearchGate
from service.mcp_server import MAX_SPAN_CHARS, build_mcp
from service.observability import Metrics
from service.settings import Settings
from tests.conftest import CITEQA, REPO, citeqa_env, run_citeqa, serve_in_thread
from tests.service.mcp_support import documents_of, error_text, http_client, run, stdio_client, structured, tool_names

pytestmark = pytest.mark.integration
ARTICLE = "insider-2024-isis-k-crocus"
QUESTION = "Who claimed responsibility for the attack on Crocus City Hall?"
KEY = "mcp-test-key"
TOOLS = {"search", "get_passage", "list_documents"}


async def check_citations(client: Client, documents: Callable[[str], str]) -> dict[str, Any]:
    """search's passages slice their documents exactly, and get_passage gives each back."""
    found = structured(await client.call_tool("search", {"question": QUESTION, "k": 3}))
    assert found["answerable"] is True and [p["rank"] for p in found["passages"]] == [1, 2, 3]
    for passage in found["passages"]:
        citation = passage["citation"]
        text = documents(citation["doc_id"])
        assert text[citation["start"] : citation["end"]] == passage["text"]
        answer = passage["answer"]
        if answer is not None:
            assert text[answer["start"] : answer["end"]] == answer["text"]
        assert "display" not in passage
        span = {"doc_id": citation["doc_id"], "start": citation["start"], "end": citation["end"]}
        back = structured(await client.call_tool("get_passage", span))
        assert back["text"] == passage["text"] and back["title"] == citation["title"]
        assert back["characters"] == len(text) and back["page"] is None
    return found


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("get_passage", {"doc_id": "no-such-document", "start": 0, "end": 10}, "no document with id"),
    ("get_passage", {"doc_id": ARTICLE, "start": -1, "end": 10}, "bad span"),
    ("get_passage", {"doc_id": ARTICLE, "start": 0, "end": 10**9}, "bad span"),
    ("get_passage", {"doc_id": ARTICLE, "start": 10, "end": 10}, "bad span"),
    ("get_passage", {"doc_id": ARTICLE, "start": 0, "end": MAX_SPAN_CHARS + 1}, f"at most {MAX_SPAN_CHARS}"),
    ("get_passage", {"doc_id": ARTICLE, "start": "zero", "end": 10}, "start"),
    ("search", {"question": "who?\x01"}, "control character"),
    ("search", {"question": "   "}, "question"),
    ("search", {"question": QUESTION, "k": 0}, "k"),
    ("search", {"question": QUESTION, "mode": "psychic"}, "mode"),
    ("search", {"question": QUESTION, "doc_ids": ["no-such-document"]}, "unknown document id(s): no-such-document"),
    ("search", {}, "question"),
    ("list_documents", {"limit": 0}, "limit"),
]


async def check_bad_input(client: Client) -> None:
    for tool, arguments, message in BAD_CALLS:
        assert message in error_text(await client.call_tool(tool, arguments)), (tool, arguments)
    # the server is still there, and answers
    listed = structured(await client.call_tool("list_documents", {}))
    assert listed["total"] == 1 and listed["documents"][0]["doc_id"] == ARTICLE


# --- stdio ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def article_text(real_index: Path) -> str:
    from ingest.index_store import load_index

    return load_index(real_index).documents[ARTICLE].text


def test_stdio_tools_exact_citations_and_tool_errors(real_index: Path, article_text: str) -> None:
    def text_of(doc_id: str) -> str:
        assert doc_id == ARTICLE
        return article_text

    async def session(client: Client) -> None:
        assert await tool_names(client) == TOOLS  # no `ask` without an LLM
        found = await check_citations(client, text_of)
        assert found["mode"] == "hybrid" and found["generation"] == 1
        filtered = structured(await client.call_tool("search", {"question": QUESTION, "doc_ids": [ARTICLE], "k": 1}))
        assert [p["citation"]["doc_id"] for p in filtered["passages"]] == [ARTICLE]
        await check_bad_input(client)

    run(session, stdio_client(real_index))


def test_stdio_stdout_carries_only_the_protocol(real_index: Path) -> None:
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "search", "arguments": {"question": "x"}},
        },
    ]
    process = subprocess.Popen(
        [*CITEQA, "mcp", "--index", str(real_index)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=citeqa_env(),
        cwd=REPO,
    )
    killer = threading.Timer(120, process.kill)  # a server that never answers fails the test, not the run
    killer.start()
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        process.stdin.flush()
        replies: list[dict[str, Any]] = []
        while not any(reply.get("id") == 2 for reply in replies):
            line = process.stdout.readline()
            assert line, "the server closed stdout before answering"
            replies.append(json.loads(line))  # every line of stdout is a protocol message
        process.stdin.close()  # the client hangs up: the server exits, 0
        process.wait(timeout=60)
        assert process.stderr is not None
        rest, stderr = process.stdout.read(), process.stderr.read()
    finally:
        killer.cancel()
        process.kill()
    assert process.returncode == 0, stderr
    assert all(reply["jsonrpc"] == "2.0" for reply in replies) and rest == ""
    assert replies[-1]["result"]["structuredContent"]["passages"]
    assert "serving MCP over stdio" in stderr  # the logs went to stderr


@pytest.mark.parametrize("index", ["/nonexistent/index", "not-an-index"])
def test_stdio_bad_index_is_one_line(index: str, tmp_path: Path) -> None:
    if index == "not-an-index":
        (tmp_path / "manifest.json").write_text("{", encoding="utf-8")
        index = str(tmp_path)
    result = run_citeqa("mcp", "--index", index)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("citeqa: error: "), result.stderr


# --- Streamable HTTP --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(real_index: Path, model_dir: Path) -> Iterator[str]:
    yield from serve_in_thread(create_app(Settings(index_dir=real_index, model_path=model_dir)))


@pytest.fixture(scope="module")
def keyed(real_index: Path, model_dir: Path) -> Iterator[str]:
    settings = Settings(index_dir=real_index, model_path=model_dir, api_key=KEY, max_body_bytes=4096)
    yield from serve_in_thread(create_app(settings))


def test_http_tools_exact_citations_and_tool_errors(served: str) -> None:
    async def session(client: Client) -> None:
        assert await tool_names(client) == TOOLS
        await check_citations(client, documents_of(served))
        await check_bad_input(client)
        listed = structured(await client.call_tool("list_documents", {"offset": 0, "limit": 10}))
        assert listed == httpx.get(f"{served}/documents", params={"limit": 10}, timeout=10).json()

    run(session, http_client(served))
    # one request at a time, each counted under its route: the mount keeps the app's telemetry
    metrics = httpx.get(f"{served}/metrics", timeout=10).text
    assert 'citeqa_requests_total{method="POST",route="/mcp",status="200"}' in metrics


def initialize(url: str, **headers: str) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    accept = {"Accept": "application/json, text/event-stream"}
    return httpx.post(f"{url}/mcp", json=body, headers={**accept, **headers}, timeout=10)


def test_http_needs_the_api_key_when_one_is_set(keyed: str) -> None:
    refused = initialize(keyed)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert "API key" in refused.json()["detail"]
    assert initialize(keyed, Authorization="Bearer wrong").status_code == 401
    assert initialize(keyed, Authorization=f"Bearer {KEY}").status_code == 200

    async def session(client: Client) -> None:
        assert await tool_names(client) == TOOLS
        await check_citations(client, documents_of(keyed, KEY))

    run(session, http_client(keyed, KEY))
    with pytest.raises(Exception) as refused_client:  # the SDK's client, without the key
        run(tool_names, http_client(keyed))
    assert any(isinstance(error, MCPError) for error in leaves(refused_client.value)), refused_client.value


def leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def test_http_refuses_foreign_origins(served: str) -> None:
    assert initialize(served, Origin="https://evil.example").status_code == 403
    assert initialize(served, Origin="http://localhost.evil.example").status_code == 403
    port = served.rsplit(":", 1)[1]
    assert initialize(served, Origin=f"http://127.0.0.1:{port}").status_code == 200


def test_http_keeps_the_body_guard(keyed: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    big = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search", "x": "a" * 5000}}
    too_large = httpx.post(f"{keyed}/mcp", json=big, headers=auth, timeout=10)
    assert too_large.status_code == 413
    not_json = httpx.post(f"{keyed}/mcp", content=b"hello", headers={**auth, "Content-Type": "text/plain"}, timeout=10)
    assert not_json.status_code == 415
    # not part of the OpenAPI document (it is no REST route), and /ask is unchanged
    assert "/mcp" not in httpx.get(f"{keyed}/openapi.json", timeout=10).json()["paths"]
    assert httpx.post(f"{keyed}/ask", json={"question": QUESTION}, timeout=10).status_code == 401


# --- a full server, a slow search, no index: tool errors too ----------------------------------


def bare_app(retriever: Any, timeout_s: float = 10.0) -> FastAPI:
    """The state the tools read, as `citeqa mcp` sets it up, for an in-process client."""
    app = FastAPI()
    app.state.settings = Settings(request_timeout_s=timeout_s)
    app.state.metrics, app.state.displays, app.state.reader = Metrics(), Displays(), None
    app.state.gate = SearchGate(1, 0, timeout_s)
    app.state.retriever = retriever
    return app


def test_busy_slow_and_unloaded_are_tool_errors(real_retriever: Any) -> None:
    async def first_error(app: FastAPI) -> str:
        async with Client(build_mcp(app)) as client:
            return error_text(await client.call_tool("search", {"question": QUESTION}))

    full = bare_app(real_retriever)
    full.state.gate.admitted = full.state.gate.capacity  # every slot taken
    assert "the server is busy" in asyncio.run(first_error(full))
    assert "took longer than 1e-09s" in asyncio.run(first_error(bare_app(real_retriever, timeout_s=1e-9)))
    assert "the index is not loaded yet" in asyncio.run(first_error(bare_app(None)))
