"""The OpenAI-compatible chat API through the official `openai` client, against a real server
over the real article index, with the scripted LLM's exact replies: the citations travel in
`citeqa` and slice their documents exactly, unsupported sentences are marked, a failing LLM
falls back without a 5xx, history reaches the LLM, and Open WebUI's source events are sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from ingest.sentences import sentence_spans
from service.app import create_app
from service.openai_api import CHECKED_SEPARATOR, FALLBACK_SEPARATOR
from service.retriever import Retriever
from service.schemas import AskResponse, WrittenAnswer
from service.settings import Settings
from tests.conftest import serve_in_thread
from tests.llm.conftest import Scripted, document_texts

KEY = "chat-api-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "Who claimed responsibility for the attack on Crocus City Hall?"
UNSUPPORTED = "The moon is made of green cheese and orbits Jupiter every Tuesday."


@pytest.fixture(scope="module")
def served(real_index: Path, model_dir: Path, scripted_llm: Scripted) -> Iterator[str]:
    settings = Settings(
        index_dir=real_index, model_path=model_dir, llm_url=scripted_llm.url, llm_timeout_s=3, api_key=KEY
    )
    yield from serve_in_thread(create_app(settings))


@pytest.fixture(scope="module")
def client(served: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served}/v1", api_key=KEY, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def documents(served: str) -> dict[str, str]:
    return document_texts(served, AUTH)


@pytest.fixture(scope="module")
def claim(served: str) -> str:
    """The rank-1 passage's answer sentence: a claim that passage supports."""
    response = httpx.post(f"{served}/ask", json={"question": QUESTION}, headers=AUTH, timeout=30)
    text = " ".join(str(response.json()["passages"][0]["answer"]["text"]).split())
    start, end = sentence_spans(text)[0]
    return text[start:end]


def ask(client: openai.OpenAI, question: str = QUESTION, **options: Any) -> tuple[str, dict[str, Any]]:
    completion = client.chat.completions.create(
        model="citeqa", messages=[{"role": "user", "content": question}], **options
    )
    assert completion.object == "chat.completion" and completion.model == "citeqa" and completion.id
    assert completion.choices[0].finish_reason == "stop" and completion.choices[0].message.role == "assistant"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    extra = completion.model_extra or {}
    citeqa = extra["citeqa"]
    check_citeqa(citeqa)
    assert len(extra["sources"]) == len(citeqa["passages"])
    for source, passage in zip(extra["sources"], citeqa["passages"], strict=True):
        check_source(source, passage)
    content = completion.choices[0].message.content
    assert content is not None
    return content, citeqa


def stream(client: openai.OpenAI, question: str = QUESTION, **options: Any) -> tuple[str, dict[str, Any], list[Any]]:
    """The streamed content, the last chunk's citeqa field and every chunk."""
    chunks = list(
        client.chat.completions.create(
            model="citeqa", messages=[{"role": "user", "content": question}], stream=True, **options
        )
    )
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len({c.id for c in chunks}) == 1
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in with_choices].count("stop") == 1
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    citeqa = (last.model_extra or {})["citeqa"]
    check_citeqa(citeqa)
    content = "".join(c.choices[0].delta.content or "" for c in with_choices)
    return content, citeqa, chunks


def check_citeqa(citeqa: dict[str, Any]) -> None:
    """The field holds what /ask says, in its schemas."""
    AskResponse.model_validate(
        {
            "question": "q",
            "mode": "hybrid",
            "took_ms": citeqa["took_ms"],
            "answerable": citeqa["answerable"],
            "no_answer_reason": citeqa["no_answer_reason"],
            "passages": citeqa["passages"],
            "generation": citeqa["generation"],
        }
    )
    WrittenAnswer.model_validate(citeqa["written"])


def assert_exact(citeqa: dict[str, Any], documents: dict[str, str]) -> int:
    """Every citation slices its document exactly; returns how many there are."""
    cited = 0
    for sentence in citeqa["written"]["sentences"]:
        for citation in sentence["citations"] + sentence["rejected"]:
            assert documents[citation["doc_id"]][citation["start"] : citation["end"]] == citation["text"]
            cited += 1
    for passage in citeqa["passages"]:
        c = passage["citation"]
        assert documents[c["doc_id"]][c["start"] : c["end"]] == passage["text"]
    return cited


def check_source(source: dict[str, Any], passage: dict[str, Any]) -> None:
    """A passage as Open WebUI reads a source (docs/chat-api.md names its files): `source.name`,
    `document` beside `metadata`, `metadata.source` telling sources apart, `metadata.page`
    0-based, `metadata.source_url` the link it opens (here: citeqa's view of the passage)."""
    c = passage["citation"]
    name = " › ".join(part for part in (c["title"], c["section"]) if part)
    assert set(source) == {"source", "document", "metadata"}
    assert source["document"] == [passage["text"]]
    (metadata,) = source["metadata"]
    url = metadata["source_url"]
    assert url.startswith("http://127.0.0.1:") and f"/view/{c['doc_id']}?start={c['start']}&end={c['end']}" in url
    expected = {
        "source": f"{c['doc_id']}:{c['start']}-{c['end']}",
        "name": name,
        "source_url": url,
        "rank": passage["rank"],
        "doc_id": c["doc_id"],
        "start": c["start"],
        "end": c["end"],
    }
    if c["page"] is not None:
        expected["page"] = c["page"] - 1
    assert metadata == expected
    assert source["source"] == {"id": expected["source"], "name": name, "url": url}


def test_models_lists_citeqa(client: openai.OpenAI) -> None:
    listed = client.models.list()
    assert [m.id for m in listed.data] == ["citeqa"]
    assert listed.data[0].object == "model"


def test_completion_cites_exactly_and_marks_unsupported_sentences(
    client: openai.OpenAI, scripted_llm: Scripted, claim: str, documents: dict[str, str]
) -> None:
    scripted_llm.script(f"{claim} [1] {UNSUPPORTED} [2]")
    content, citeqa = ask(client)
    written = citeqa["written"]
    assert content == written["text"]
    assert written["status"] == "written" and citeqa["answerable"] is True
    first, second = written["sentences"]
    assert first["supported"] is True and first["citations"][0]["rank"] == 1
    assert second["supported"] is False and second["citations"] == []
    assert content.startswith(claim) and content.endswith(f"{UNSUPPORTED} [unsupported]")
    assert assert_exact(citeqa, documents) == 2
    assert citeqa["query"] == QUESTION and len(citeqa["passages"]) == 5
    sent = scripted_llm.requests()[-1]
    assert QUESTION in sent["messages"][-1]["content"] and "[1]" in sent["messages"][-1]["content"]


def test_stream_sends_sources_then_text_then_the_checked_answer(
    client: openai.OpenAI, scripted_llm: Scripted, claim: str, documents: dict[str, str]
) -> None:
    reply = f"{claim} [1] {UNSUPPORTED} [2]"
    scripted_llm.script(reply)
    content, citeqa, chunks = stream(client)
    written = citeqa["written"]
    # The LLM's text as it came, then the checked text below a rule: the unsupported sentence marked.
    assert content == reply + CHECKED_SEPARATOR + written["text"]
    assert written["text"].endswith(f"{UNSUPPORTED} [unsupported]")
    assert written["sentences"][0]["supported"] is True and written["sentences"][1]["supported"] is False
    assert assert_exact(citeqa, documents) == 2
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 5  # streamed in pieces; markers never split
    for delta in deltas:
        assert delta.count("[") == delta.count("]")
    last = chunks[-1]
    assert last.usage is not None and last.usage.completion_tokens > 0


def test_stream_sends_open_webui_source_events(client: openai.OpenAI, scripted_llm: Scripted, claim: str) -> None:
    """One chunk per passage, before the text, with a top-level `event` of type `source` whose
    `data` is a source as Open WebUI keeps it: open-webui's middleware.py passes a chunk's
    `event` to its event emitter; Chat.svelte appends a `source` event's data to the message's
    sources; Citations.svelte numbers them by distinct `metadata.source`, so `[n]` opens the
    passage of rank n."""
    scripted_llm.script(f"{claim} [1]")
    _, citeqa, chunks = stream(client, extra_body={"k": 4})
    events = [(i, (c.model_extra or {}).get("event")) for i, c in enumerate(chunks)]
    sources = [(i, e) for i, e in events if e is not None]
    first_text = next(i for i, c in enumerate(chunks) if c.choices and c.choices[0].delta.content)
    assert len(sources) == 4 and all(i < first_text for i, _ in sources)
    for (i, event), passage in zip(sources, citeqa["passages"], strict=True):
        assert chunks[i].choices == []  # as OpenAI's own usage chunk: no choice to read
        assert event["type"] == "source"
        check_source(event["data"], passage)
    assert len({e["data"]["metadata"][0]["source"] for _, e in sources}) == 4


def test_stream_cut_off_ends_with_the_extractive_answer_below_a_rule(
    client: openai.OpenAI, scripted_llm: Scripted, documents: dict[str, str]
) -> None:
    scripted_llm.script("A long answer that will be cut off before it ends, in the middle. [1]", "cut")
    content, citeqa, _ = stream(client)
    written = citeqa["written"]
    assert written["status"] == "extractive"
    assert written["fallback_reason"] == "the LLM's stream stopped before its end"
    separator = FALLBACK_SEPARATOR.format(reason=written["fallback_reason"])
    streamed, extractive = content.split(separator)
    assert streamed and "A long answer".startswith(streamed[:13])
    assert extractive == written["text"] and extractive.endswith("[1]")
    assert assert_exact(citeqa, documents) == 1


@pytest.mark.parametrize(
    ("mode", "delay", "reason"),
    [
        ("error", 0, "the LLM server answered HTTP 500"),
        ("garbage", 0, "the LLM's reply is not a chat completion"),
        ("slow", 5, "the LLM did not answer within 3 s"),
    ],
)
def test_failing_llm_gives_the_extractive_answer_not_a_5xx(
    client: openai.OpenAI, scripted_llm: Scripted, mode: str, delay: float, reason: str
) -> None:
    scripted_llm.script("It is so. [1]", mode, delay)
    content, citeqa = ask(client)
    written = citeqa["written"]
    assert written["status"] == "extractive" and written["fallback_reason"] == reason
    assert content == written["text"] and content.endswith("[1]")
    citation = written["sentences"][0]["citations"][0]
    assert citation["start"] == citeqa["passages"][0]["answer"]["start"]
    if mode == "error":  # streamed: the failure comes before any text, so no rule
        content, citeqa, _ = stream(client)
        assert content == citeqa["written"]["text"] and citeqa["written"]["fallback_reason"] == reason


def test_follow_up_reaches_the_llm_with_its_history(client: openai.OpenAI, scripted_llm: Scripted, claim: str) -> None:
    # "Who else?" alone finds nothing answerable in the article; joined to the question before, it does.
    scripted_llm.script(f"{claim} [1]")
    history: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "ISIS-K claimed it. [1]"},
    ]
    completion = client.chat.completions.create(
        model="citeqa", messages=[*history, {"role": "user", "content": [{"type": "text", "text": "Who else?"}]}]
    )
    citeqa = (completion.model_extra or {})["citeqa"]
    assert citeqa["query"] == f"{QUESTION} Who else?"
    assert citeqa["answerable"] is True and citeqa["written"]["status"] == "written"
    sent = scripted_llm.requests()[-1]["messages"]
    assert sent[0]["role"] == "system" and "numbered passages" in sent[0]["content"]  # citeqa's, not the client's
    assert sent[1:3] == history[1:]
    assert sent[-1]["role"] == "user" and sent[-1]["content"].endswith("Question: Who else?")


def test_citeqa_options_come_as_extra_body(client: openai.OpenAI, scripted_llm: Scripted, claim: str) -> None:
    scripted_llm.script(f"{claim} [1]")
    _, citeqa = ask(client, extra_body={"k": 3, "mode": "lexical"})
    assert len(citeqa["passages"]) == 3
    _, citeqa, _ = stream(client, extra_body={"k": 2})
    assert len(citeqa["passages"]) == 2


def test_open_webui_extras_and_other_model_names_are_answered(served: str, scripted_llm: Scripted, claim: str) -> None:
    scripted_llm.script(f"{claim} [1]")
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": QUESTION}],
        "temperature": 0.7,
        "max_tokens": 100,
        "top_p": 1,
        "n": 1,
        "user": "someone",
        "stream_options": {"include_usage": True},
        "params": {},
        "features": {"web_search": False},
        "chat_id": "local",
        "metadata": {"x": 1},
    }
    response = httpx.post(f"{served}/v1/chat/completions", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "citeqa"


def test_api_key_is_enforced(served: str) -> None:
    wrong = openai.OpenAI(base_url=f"{served}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        wrong.chat.completions.create(model="citeqa", messages=[{"role": "user", "content": QUESTION}])
    assert raised.value.status_code == 401
    assert raised.value.body == {
        "message": "missing or wrong API key (send 'Authorization: Bearer <key>')",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    # A wrong key is refused before the body is read: a bad body gets a 401 too.
    response = httpx.post(f"{served}/v1/chat/completions", json={"messages": []}, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"messages": []}, "messages", "messages is empty"),
        ({"messages": [{"role": "system", "content": "Be brief."}]}, "messages", "messages holds no user message"),
        ({"messages": [{"role": "user", "content": "   "}]}, "messages", "the last user message: "),
        ({"messages": [{"role": "user", "content": "x" * 1001}]}, "messages", "the last user message: "),
        ({"messages": None}, "messages", "messages: Input should be a valid list"),
        ({"messages": "hello"}, "messages", "messages: "),
        ({"messages": [{"content": "hi"}]}, "messages[0].role", "messages[0].role: Field required"),
        ({"k": 0}, "k", "k: Input should be greater than or equal to 1"),
        ({"k": "five"}, "k", "k: "),
        ({"mode": "psychic"}, "mode", "mode: "),
        ({"n": 2}, "n", "only n=1 is supported"),
        ({"doc_ids": ["no-such-document"]}, "doc_ids", "unknown document id 'no-such-document'"),
        ({"section": "a\x00b"}, "section", "section: "),
    ],
)
def test_bad_requests_are_400_in_openai_shape(served: str, body: dict[str, Any], param: str, message: str) -> None:
    sent = {"model": "citeqa", "messages": [{"role": "user", "content": QUESTION}], **body}
    response = httpx.post(f"{served}/v1/chat/completions", json=sent, headers=AUTH, timeout=10)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"].startswith(message), error


def test_bad_json_and_the_client_errors(served: str, client: openai.OpenAI) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = httpx.post(f"{served}/v1/chat/completions", content=b'{"messages": [', headers=headers, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    response = httpx.post(f"{served}/v1/chat/completions", json={"model": "citeqa"}, headers=AUTH, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "messages: Field required",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "missing",
    }
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="citeqa", messages=[])
    assert raised.value.param == "messages"


def test_a_lone_surrogate_in_the_history_is_replaced_not_a_500(served: str, scripted_llm: Scripted, claim: str) -> None:
    scripted_llm.script(f"{claim} [1]")
    raw = (
        '{"messages": [{"role": "user", "content": "Crocus \\ud800 attack"}, {"role": "user", "content": "Who else?"}]}'
    )
    headers = {**AUTH, "Content-Type": "application/json"}
    response = httpx.post(f"{served}/v1/chat/completions", content=raw.encode(), headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["citeqa"]["query"] == "Crocus \ufffd attack Who else?"
    assert scripted_llm.requests()[-1]["messages"][1]["content"] == "Crocus \ufffd attack"


def test_not_ready_is_503_in_openai_shape(tmp_path: Path) -> None:
    def failing_loader(settings: Settings) -> Retriever:
        raise RuntimeError("no index here")

    with TestClient(create_app(Settings(index_dir=tmp_path), loader=failing_loader)) as test_client:
        body = {"model": "citeqa", "messages": [{"role": "user", "content": QUESTION}]}
        response = test_client.post("/v1/chat/completions", json=body)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["error"] == {
            "message": "index is not loaded yet",
            "type": "server_error",
            "param": None,
            "code": "not_ready",
        }


def test_the_chat_body_has_its_own_cap(tmp_path: Path) -> None:
    def failing_loader(settings: Settings) -> Retriever:
        raise RuntimeError("no index here")

    settings = Settings(index_dir=tmp_path, max_body_bytes=1024, max_chat_body_bytes=4096)
    with TestClient(create_app(settings, loader=failing_loader)) as test_client:
        chat = {"messages": [{"role": "user", "content": "x" * 2000}]}
        assert test_client.post("/v1/chat/completions", json=chat).status_code == 503  # read: over /ask's cap only
        assert test_client.post("/ask", json={"question": "x" * 2000}).status_code == 413
        chat = {"messages": [{"role": "user", "content": "x" * 5000}]}
        assert test_client.post("/v1/chat/completions", json=chat).status_code == 413


def test_a_long_conversation_fits(served: str, scripted_llm: Scripted, claim: str) -> None:
    """A chat client sends the whole conversation: more than /ask's 16 KiB body limit."""
    scripted_llm.script(f"{claim} [1]")
    turns = [{"role": r, "content": "earlier words " * 100} for _ in range(20) for r in ("user", "assistant")]
    body = {"model": "citeqa", "messages": [*turns, {"role": "user", "content": QUESTION}]}
    response = httpx.post(f"{served}/v1/chat/completions", json=body, headers=AUTH, timeout=30)
    assert len(response.request.content) > 16 * 1024
    assert response.status_code == 200, response.text
    sent = scripted_llm.requests()[-1]["messages"]
    assert len(sent) == 1 + 6 + 1  # the reader's system prompt, its last six turns, the question


def test_without_an_llm_the_answer_is_the_extractive_one(real_index: Path, model_dir: Path) -> None:
    for url in serve_in_thread(create_app(Settings(index_dir=real_index, model_path=model_dir))):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)
        listed = httpx.get(f"{url}/documents", timeout=10).json()["documents"]
        documents = {
            d["doc_id"]: httpx.get(f"{url}/documents/{d['doc_id']}", timeout=10).json()["text"] for d in listed
        }
        content, citeqa = ask(client)
        written = citeqa["written"]
        assert written["status"] == "extractive"
        assert written["fallback_reason"] == "no LLM is configured (set CITEQA_LLM_URL)"
        assert content == written["text"] and content.endswith("[1]")
        assert written["sentences"][0]["supported"] is True
        assert assert_exact(citeqa, documents) == 1
        streamed, citeqa, chunks = stream(client)
        assert streamed == citeqa["written"]["text"] == content  # no text streamed before it: no rule
        assert sum(1 for c in chunks if (c.model_extra or {}).get("event")) == 5
        content, citeqa = ask(client, "What is the weather on Mars?")
        assert citeqa["answerable"] is False
        assert content == f"No answer: {citeqa['written']['reason']}"
