"""Written answers from a real LLM server: llama-cpp-python serving Gemma 3 270M, a small base
model that does not follow instructions well (stray markers, unsupported sentences, passages
echoed back), which makes it a real test of the checks. `make test-llm` runs these."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.schemas import AskResponse
from service.settings import Settings
from tests.conftest import serve_in_thread
from tests.llm.conftest import assert_checked, document_texts, llama_server, sse_events

pytestmark = [pytest.mark.llama, pytest.mark.integration]

QUESTIONS = [
    "Which group claimed responsibility for the Crocus City Hall attack?",
    "How many people were killed in the Crocus City Hall attack?",
    "What is the recipe for a good sourdough bread?",
]


def settings(index: Path, model_dir: Path, url: str, timeout: float = 240) -> Settings:
    return Settings(index_dir=index, model_path=model_dir, llm_url=url, llm_timeout_s=timeout, llm_max_tokens=120)


@pytest.fixture(scope="module")
def served(real_index: Path, model_dir: Path, llama: str) -> Iterator[str]:
    yield from serve_in_thread(create_app(settings(real_index, model_dir, llama)))


@pytest.fixture(scope="module")
def documents(served: str) -> dict[str, str]:
    return document_texts(served)


@pytest.mark.parametrize("question", QUESTIONS)
def test_written_answer_through_ask(served: str, documents: dict[str, str], question: str) -> None:
    response = httpx.post(f"{served}/ask", json={"question": question, "written": True}, timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    AskResponse.model_validate(body)
    written = body["written"]
    assert written["status"] in ("written", "unsupported", "declined"), written["fallback_reason"]
    assert written["raw_text"]
    assert_checked(written, min(5, len(body["passages"])), documents)


def test_written_answer_through_the_stream(served: str, documents: dict[str, str]) -> None:
    with httpx.stream("POST", f"{served}/ask/stream", json={"question": QUESTIONS[0]}, timeout=300) as response:
        assert response.status_code == 200
        events = list(sse_events(response))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "passages" and kinds[-1] == "answer" and "delta" in kinds
    answer = events[-1][1]
    assert answer["status"] in ("written", "unsupported", "declined"), answer["fallback_reason"]
    streamed = "".join(data["text"] for kind, data in events if kind == "delta")
    assert streamed == answer["raw_text"]
    assert_checked(answer, min(5, len(events[0][1]["passages"])), documents)


def test_slower_than_the_timeout_falls_back(real_index: Path, model_dir: Path, llama: str) -> None:
    for url in serve_in_thread(create_app(settings(real_index, model_dir, llama, timeout=0.05))):
        response = httpx.post(f"{url}/ask", json={"question": QUESTIONS[0], "written": True}, timeout=60)
        assert response.status_code == 200
        written = response.json()["written"]
        assert written["status"] == "extractive"
        assert written["fallback_reason"] == "the LLM did not answer within 0.05 s"


def test_server_stopped_mid_stream_falls_back(real_index: Path, model_dir: Path) -> None:
    """The LLM server's process is killed after its first words: the stream ends with the
    extractive answer, and the service goes on answering."""
    with llama_server() as (llm, process):
        for url in serve_in_thread(create_app(settings(real_index, model_dir, llm))):
            killed = threading.Event()
            with httpx.stream("POST", f"{url}/ask/stream", json={"question": QUESTIONS[0]}, timeout=300) as response:
                assert response.status_code == 200
                events = []
                for kind, data in sse_events(response):
                    events.append((kind, data))
                    if kind == "delta" and not killed.is_set():
                        process.kill()
                        killed.set()
            assert killed.is_set(), "the LLM wrote nothing to stop"
            assert events[-1][0] == "answer"
            assert events[-1][1]["status"] == "extractive"
            assert events[-1][1]["fallback_reason"]
            after = httpx.post(f"{url}/ask", json={"question": QUESTIONS[1], "written": True}, timeout=60)
            assert after.status_code == 200
            assert after.json()["written"]["fallback_reason"].startswith("the LLM server cannot be reached")


def test_written_answer_through_the_openai_client(served: str, documents: dict[str, str]) -> None:
    import openai

    from tests.llm.test_openai_api import ask, stream

    client = openai.OpenAI(base_url=f"{served}/v1", api_key="unused", timeout=300, max_retries=0)
    content, citeqa = ask(client, QUESTIONS[0])
    written = citeqa["written"]
    assert written["status"] in ("written", "unsupported", "declined"), written["fallback_reason"]
    assert_checked(written, min(5, len(citeqa["passages"])), documents)
    assert content  # the checked text, or the reason there is none
    streamed, citeqa, _ = stream(client, QUESTIONS[1])
    written = citeqa["written"]
    assert written["status"] in ("written", "unsupported", "declined"), written["fallback_reason"]
    assert_checked(written, min(5, len(citeqa["passages"])), documents)
    assert written["raw_text"] in streamed  # the LLM's words as they came, then the checked text if it differs


def test_written_answer_through_mcp_over_http_and_stdio(
    served: str, documents: dict[str, str], real_index: Path, llama: str
) -> None:
    from mcp import Client

    from tests.service.mcp_support import http_client, run, stdio_client, structured

    async def session(client: Client) -> dict[str, Any]:
        return structured(await client.call_tool("ask", {"question": QUESTIONS[0], "k": 3}))

    over_http = run(session, http_client(served))
    over_stdio = run(session, stdio_client(real_index, CITEQA_LLM_URL=llama, CITEQA_LLM_TIMEOUT_S="240",
                                           CITEQA_LLM_MAX_TOKENS="120"))  # fmt: skip
    for body in (over_http, over_stdio):
        written = body["written"]
        assert written["status"] in ("written", "unsupported", "declined"), written["fallback_reason"]
        assert_checked(written, 3, documents)
    # temperature 0 and a seed: the same passages give the same words, whichever way in
    assert over_http["written"]["raw_text"] == over_stdio["written"]["raw_text"]
