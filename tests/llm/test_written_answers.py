"""Written answers through `/ask` and `/ask/stream`, with the scripted LLM's exact replies and
the real model and index: every citation slices its document, every unsupported sentence is
marked, every LLM failure falls back to the extractive answer without a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.sentences import sentence_spans
from service.app import create_app
from service.schemas import AskResponse
from service.settings import Settings
from tests.conftest import serve_in_thread
from tests.llm.conftest import Scripted, document_texts, sse_events

QUESTION = "Who claimed responsibility for the attack on Crocus City Hall?"


@pytest.fixture(scope="module")
def served(real_index: Path, model_dir: Path, scripted_llm: Scripted) -> Iterator[str]:
    settings = Settings(index_dir=real_index, model_path=model_dir, llm_url=scripted_llm.url, llm_timeout_s=3)
    yield from serve_in_thread(create_app(settings))


def ask(url: str, question: str = QUESTION, **extra: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/ask", json={"question": question, "written": True, **extra}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    AskResponse.model_validate(body)
    return body


def stream(url: str, question: str = QUESTION) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("POST", f"{url}/ask/stream", json={"question": question}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events.extend(sse_events(response))
    return events


def answer_sentence(body: dict[str, Any], rank: int = 1) -> str:
    """The extractive answer sentence of a passage: a claim its passage supports."""
    text = " ".join(str(body["passages"][rank - 1]["answer"]["text"]).split())
    start, end = sentence_spans(text)[0]  # an answer span may be two sentences
    return text[start:end]


def assert_exact(body: dict[str, Any], documents: dict[str, str]) -> None:
    for sentence in body["written"]["sentences"]:
        for citation in sentence["citations"] + sentence["rejected"]:
            assert documents[citation["doc_id"]][citation["start"] : citation["end"]] == citation["text"]


@pytest.fixture(scope="module")
def documents(served: str) -> dict[str, str]:
    return document_texts(served)


def test_supported_sentence_is_cited_with_an_exact_span(
    served: str, scripted_llm: Scripted, documents: dict[str, str]
) -> None:
    plain = ask(served, written=False)
    claim = answer_sentence(plain)
    scripted_llm.script(f"{claim} [1]")
    body = ask(served)
    written = body["written"]
    assert written["status"] == "written" and written["answerable"] is True
    (sentence,) = written["sentences"]
    assert sentence["supported"] is True and sentence["markers"] == [1]
    assert sentence["citations"][0]["rank"] == 1
    assert_exact(body, documents)
    sent = scripted_llm.requests()[-1]
    assert sent["temperature"] == 0 and "seed" in sent
    assert "[1]" in sent["messages"][-1]["content"] and QUESTION in sent["messages"][-1]["content"]


def test_unknown_marker_is_dropped_and_reported(served: str, scripted_llm: Scripted) -> None:
    plain = ask(served, written=False)
    claim = answer_sentence(plain)
    scripted_llm.script(f"{claim} [1][9]")
    written = ask(served)["written"]
    assert written["dropped_markers"] == [{"marker": 9, "sentence": 0, "reason": "no passage [9] was given to the LLM"}]
    assert written["sentences"][0]["supported"] is True
    assert "[9]" not in written["text"]


def test_marker_to_an_irrelevant_passage_is_not_shown_as_cited(served: str, scripted_llm: Scripted) -> None:
    plain = ask(served, written=False)
    scripted_llm.script("The moon is made of green cheese and orbits Jupiter every Tuesday. [2]")
    written = ask(served)["written"]
    (sentence,) = written["sentences"]
    assert sentence["supported"] is False and sentence["citations"] == []
    assert sentence["rejected"][0]["marker"] == 2 and sentence["reason"] == "no passage it cites supports it"
    assert written["status"] == "unsupported" and written["answerable"] is False
    assert written["text"].endswith("[unsupported]") and "[2]" not in written["text"]
    assert plain["passages"]


def test_sentence_without_markers_is_marked(served: str, scripted_llm: Scripted) -> None:
    plain = ask(served, written=False)
    claim = answer_sentence(plain)
    scripted_llm.script(f"{claim} [1] And that is all there is to it.")
    written = ask(served)["written"]
    first, second = written["sentences"]
    assert first["supported"] is True
    assert second["supported"] is False and second["reason"] == "it cites no passage"
    assert written["status"] == "written"


def test_declining_llm_makes_the_answer_unanswerable(served: str, scripted_llm: Scripted) -> None:
    scripted_llm.script("NO ANSWER")
    written = ask(served)["written"]
    assert written["status"] == "declined" and written["answerable"] is False
    assert written["reason"] == "the LLM said the passages do not answer the question"


@pytest.mark.parametrize(
    ("mode", "delay", "reason"),
    [
        ("error", 0, "the LLM server answered HTTP 500"),
        ("garbage", 0, "the LLM's reply is not a chat completion"),
        ("slow", 5, "the LLM did not answer within 3 s"),
    ],
)
def test_failing_llm_falls_back_to_the_extractive_answer(
    served: str, scripted_llm: Scripted, mode: str, delay: float, reason: str
) -> None:
    scripted_llm.script("It is so. [1]", mode, delay)
    body = ask(served)
    written = body["written"]
    assert written["status"] == "extractive" and written["fallback_reason"] == reason
    assert written["answerable"] is body["answerable"]
    citation = written["sentences"][0]["citations"][0]
    assert citation["start"] == body["passages"][0]["answer"]["start"]


def test_stream_sends_passages_then_text_then_the_checked_answer(served: str, scripted_llm: Scripted) -> None:
    plain = ask(served, written=False)
    claim = answer_sentence(plain)
    reply = f"{claim} [1] Unrelated words about the weather on Mars. [12]"
    scripted_llm.script(reply)
    events = stream(served)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "passages" and kinds[-1] == "answer" and set(kinds[1:-1]) == {"delta"}
    deltas = [data["text"] for kind, data in events if kind == "delta"]
    assert "".join(deltas) == reply
    for delta in deltas:  # the scripted server splits every 3 characters; no event ends in a marker
        assert delta.count("[") == delta.count("]")
    answer = events[-1][1]
    assert answer["sentences"][0]["supported"] is True
    assert answer["sentences"][1]["supported"] is False
    assert answer["dropped_markers"][0]["marker"] == 12


def test_stream_cut_off_falls_back(served: str, scripted_llm: Scripted) -> None:
    scripted_llm.script("A long answer that will be cut off before it ends, in the middle. [1]", "cut")
    events = stream(served)
    answer = events[-1][1]
    assert events[-1][0] == "answer"
    assert answer["status"] == "extractive"
    assert answer["fallback_reason"] == "the LLM's stream stopped before its end"


def test_unreachable_llm_falls_back(real_index: Path, model_dir: Path) -> None:
    from tests.conftest import free_port

    settings = Settings(index_dir=real_index, model_path=model_dir, llm_url=f"http://127.0.0.1:{free_port()}/v1")
    for url in serve_in_thread(create_app(settings)):
        written = ask(url)["written"]
        assert written["status"] == "extractive"
        assert written["fallback_reason"].startswith("the LLM server cannot be reached")
        events = stream(url)
        assert events[-1][1]["status"] == "extractive"


def test_without_an_llm_the_written_answer_is_the_extractive_one(real_index: Path, model_dir: Path) -> None:
    for url in serve_in_thread(create_app(Settings(index_dir=real_index, model_path=model_dir))):
        body = ask(url)
        written = body["written"]
        assert written["fallback_reason"] == "no LLM is configured (set CITEQA_LLM_URL)"
        assert written["text"].endswith("[1]") and written["sentences"][0]["supported"] is True
        plain = ask(url, written=False)
        assert "written" not in plain


def test_written_answers_take_turns_and_one_that_waits_too_long_falls_back(
    real_index: Path, model_dir: Path, scripted_llm: Scripted
) -> None:
    """At most CITEQA_LLM_MAX_RUNNING answers are asked of the LLM at once: with one slot and a
    reply taking 1.6 s, the second of three waits its turn and is written, the third waits past
    the 2 s timeout and is the extractive answer; the metrics count each by status."""
    from concurrent.futures import ThreadPoolExecutor

    settings = Settings(
        index_dir=real_index, model_path=model_dir, llm_url=scripted_llm.url, llm_timeout_s=2, llm_max_running=1
    )
    for url in serve_in_thread(create_app(settings)):
        scripted_llm.script("NO ANSWER", "slow", 1.6)
        with ThreadPoolExecutor(3) as pool:
            bodies = list(pool.map(ask, [url] * 3))
        statuses = sorted(body["written"]["status"] for body in bodies)
        assert statuses == ["declined", "declined", "extractive"]
        (busy,) = [b["written"] for b in bodies if b["written"]["status"] == "extractive"]
        assert busy["fallback_reason"] == "the LLM is busy (1 written answers at once, none done within 2 s)"
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert 'citeqa_written_answers_total{status="declined"} 2.0' in metrics
        assert 'citeqa_written_answers_total{status="extractive"} 1.0' in metrics
