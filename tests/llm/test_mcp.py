"""The MCP tool `ask` with the scripted LLM, over Streamable HTTP (behind the API key) and over
stdio: registered only when an LLM is configured, its written answer's citations slice their
documents exactly, and a sentence whose marker points at an irrelevant passage is marked
unsupported, never shown as cited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from ingest.sentences import sentence_spans
from service.app import create_app
from service.settings import Settings
from tests.conftest import serve_in_thread
from tests.llm.conftest import Scripted
from tests.service.mcp_support import documents_of, error_text, http_client, run, stdio_client, structured, tool_names

QUESTION = "Who claimed responsibility for the attack on Crocus City Hall?"
UNSUPPORTED = "The moon is made of green cheese and orbits Jupiter every Tuesday."
KEY = "mcp-llm-key"
TOOLS = {"search", "get_passage", "list_documents", "ask"}


@pytest.fixture(scope="module")
def served(real_index: Path, model_dir: Path, scripted_llm: Scripted) -> Iterator[str]:
    settings = Settings(
        index_dir=real_index, model_path=model_dir, llm_url=scripted_llm.url, llm_timeout_s=3, api_key=KEY
    )
    yield from serve_in_thread(create_app(settings))


def supported_claim(found: dict[str, Any]) -> str:
    """The rank-1 passage's answer sentence: a claim its passage supports."""
    text = " ".join(str(found["passages"][0]["answer"]["text"]).split())
    start, end = sentence_spans(text)[0]
    return text[start:end]


async def check_ask(client: Client, scripted_llm: Scripted, documents: Callable[[str], str]) -> None:
    assert await tool_names(client) == TOOLS
    claim = supported_claim(structured(await client.call_tool("search", {"question": QUESTION})))
    scripted_llm.script(f"{claim} [1] {UNSUPPORTED} [2]")
    body = structured(await client.call_tool("ask", {"question": QUESTION, "k": 3}))
    written = body["written"]
    assert written["status"] == "written" and written["answerable"] is True
    first, second = written["sentences"]
    assert first["supported"] is True and first["citations"]
    for citation in first["citations"] + second["rejected"]:
        assert documents(citation["doc_id"])[citation["start"] : citation["end"]] == citation["text"]
    assert second["supported"] is False and second["citations"] == []
    assert second["rejected"][0]["marker"] == 2 and second["reason"] == "no passage it cites supports it"
    assert written["text"].endswith(f"{UNSUPPORTED} [unsupported]")
    assert "[2]" not in written["text"]
    # the passages the LLM read come along, as search gives them
    assert [p["rank"] for p in body["passages"]] == [1, 2, 3]
    for passage in body["passages"]:
        citation = passage["citation"]
        assert documents(citation["doc_id"])[citation["start"] : citation["end"]] == passage["text"]


def test_http_ask_writes_a_checked_answer(served: str, scripted_llm: Scripted) -> None:
    async def session(client: Client) -> None:
        await check_ask(client, scripted_llm, documents_of(served, KEY))
        # a failing LLM is the extractive answer, not a tool error
        scripted_llm.script("It is so. [1]", "error")
        written = structured(await client.call_tool("ask", {"question": QUESTION}))["written"]
        assert written["status"] == "extractive" and written["fallback_reason"] == "the LLM server answered HTTP 500"
        refused = await client.call_tool("ask", {"question": QUESTION, "doc_ids": ["no-such-document"]})
        assert "unknown document id(s)" in error_text(refused)

    run(session, http_client(served, KEY))


def test_stdio_ask_writes_a_checked_answer(real_index: Path, scripted_llm: Scripted) -> None:
    from ingest.index_store import load_index

    texts = {doc_id: document.text for doc_id, document in load_index(real_index).documents.items()}

    async def session(client: Client) -> None:
        await check_ask(client, scripted_llm, texts.__getitem__)

    run(session, stdio_client(real_index, CITEQA_LLM_URL=scripted_llm.url, CITEQA_LLM_TIMEOUT_S="10"))
