"""/documents, /ask filters and page citations, in process, over a three-format corpus (the
article, the FHS 3.0 PDF, a Markdown note) indexed with the fake embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.chunking import Chunk, Sentence
from ingest.documents import Document
from ingest.index_store import load_index
from service.app import create_app
from service.asking import passage_dict
from service.retriever import Hit, Retriever
from service.schemas import AskResponse, DocumentList
from service.settings import Settings
from tests.conftest import FakeEmbedder
from tests.service.test_api import wait_ready

ARTICLE, FHS, NOTE = "insider-2024-isis-k-crocus", "fhs-3.0", "harbour"
FHS_QUESTIONS = [
    "Where are manual pages stored?",
    "What is /var/cache for?",
    "Which directories must be in the root filesystem?",
    "Where do temporary files go?",
    "What belongs in /usr/local?",
]


def serve(index: Path, **settings: Any) -> Iterator[TestClient]:
    app = create_app(
        Settings(index_dir=index, **settings), loader=lambda s: Retriever(load_index(s.index_dir), FakeEmbedder())
    )
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture(scope="module")
def client(mixed_index: Path) -> Iterator[TestClient]:
    yield from serve(mixed_index)


def ask(client: TestClient, **payload: Any) -> dict[str, Any]:
    response = client.post("/ask", json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    AskResponse.model_validate(body)
    return body


def page_holding(pages: list[int], offset: int) -> int:
    """The 1-based page whose range [pages[n-1], pages[n]) holds `offset`."""
    return max(number for number, start in enumerate(pages, 1) if start <= offset)


# --- GET /documents ---------------------------------------------------------------------


def test_documents_lists_the_corpus(client: TestClient) -> None:
    body = client.get("/documents").json()
    DocumentList.model_validate(body)
    assert (body["total"], body["offset"], body["limit"]) == (3, 0, 50)
    listed = {d["doc_id"]: d for d in body["documents"]}
    assert set(listed) == {ARTICLE, FHS, NOTE}
    assert (listed[FHS]["format"], listed[FHS]["pages"]) == ("pdf", 50)
    assert (listed[ARTICLE]["format"], listed[ARTICLE]["pages"]) == ("text", None)
    assert (listed[NOTE]["format"], listed[NOTE]["pages"], listed[NOTE]["title"]) == (
        "markdown",
        None,
        "Harbour records",
    )
    for doc_id, summary in listed.items():
        document = client.get(f"/documents/{doc_id}").json()
        assert summary["characters"] == len(document["text"]) > 0
        assert (summary["title"], summary["source"], summary["format"]) == (
            document["title"],
            document["source"],
            document["format"],
        )


def test_documents_pages_through_the_corpus(client: TestClient) -> None:
    everything = [d["doc_id"] for d in client.get("/documents").json()["documents"]]
    paged = []
    for offset in range(4):
        body = client.get("/documents", params={"offset": offset, "limit": 1}).json()
        assert (body["total"], body["offset"], body["limit"]) == (3, offset, 1)
        paged += [d["doc_id"] for d in body["documents"]]
    assert paged == everything
    assert [d["doc_id"] for d in client.get("/documents?offset=1&limit=200").json()["documents"]] == everything[1:]
    assert client.get("/documents", params={"offset": 10**30}).json()["documents"] == []


@pytest.mark.parametrize(
    "query",
    ["offset=-1", "limit=0", "limit=201", "limit=abc", "offset=1.5", "limit=", "offset=1e3", "limit=-5"],
)
def test_bad_document_paging_is_422(client: TestClient, query: str) -> None:
    response = client.get(f"/documents?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]


def test_document_gives_its_format_and_page_offsets(client: TestClient) -> None:
    pdf = client.get(f"/documents/{FHS}").json()
    assert pdf["format"] == "pdf" and len(pdf["pages"]) == 50
    assert pdf["pages"][0] == 0 and pdf["pages"] == sorted(set(pdf["pages"])) and pdf["pages"][-1] < len(pdf["text"])
    text = client.get(f"/documents/{ARTICLE}").json()
    assert text["format"] == "text" and text["pages"] is None


def test_documents_need_the_api_key_when_one_is_set(mixed_index: Path) -> None:
    for guarded in serve(mixed_index, api_key="sekret"):
        assert guarded.get("/documents").status_code == 401
        assert guarded.get("/documents", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert guarded.get("/documents", headers={"Authorization": "Bearer sekret"}).json()["total"] == 3


# --- pages in citations -----------------------------------------------------------------


def test_pdf_citations_name_the_page_that_holds_them(client: TestClient) -> None:
    document = client.get(f"/documents/{FHS}").json()
    text, pages = document["text"], document["pages"]
    cited_pages: set[int] = set()
    for question in FHS_QUESTIONS:
        for passage in ask(client, question=question, k=10, doc_ids=[FHS])["passages"]:
            citation, answer = passage["citation"], passage["answer"]
            assert citation["doc_id"] == FHS
            assert text[citation["start"] : citation["end"]] == passage["text"]
            assert citation["page"] == page_holding(pages, citation["start"])
            assert citation["pages"] == [citation["page"], page_holding(pages, citation["end"] - 1)]
            assert text[answer["start"] : answer["end"]] == answer["text"]
            assert answer["page"] == page_holding(pages, answer["start"])
            cited_pages.add(citation["page"])
    assert len(cited_pages) > 5  # not everything on page 1


def test_documents_without_pages_cite_none(client: TestClient) -> None:
    passages = ask(client, question="Who is David Sharp? harbour", k=10, doc_ids=[ARTICLE, NOTE])["passages"]
    assert passages
    for passage in passages:
        assert passage["citation"]["page"] is None and passage["citation"]["pages"] is None
        assert passage["answer"]["page"] is None


def test_passage_dict_gives_first_and_last_page() -> None:
    text = "Page one.\n\nPage two begins here and\n\ngoes on over page three."
    pages = (0, text.index("Page two"), text.index("goes"))
    document = Document("paged", "Paged", "paged.pdf", text, format="pdf", pages=pages)
    start, end = pages[1], len(text)
    chunk = Chunk("paged:x", "paged", text[start:end], start, end, None, None, "narrative")
    answer = Sentence("paged", pages[2], end)
    body = passage_dict(Hit(1, 0.5, chunk, document, answer))
    assert (body["citation"]["page"], body["citation"]["pages"], body["answer"]["page"]) == (2, [2, 3], 3)
    # A span that ends where the next page starts lies on one page.
    on_two = Chunk("paged:y", "paged", text[start : pages[2]], start, pages[2], None, None, "narrative")
    assert passage_dict(Hit(1, 0.5, on_two, document))["citation"]["pages"] == [2, 2]
    unpaged = Document("plain", "Plain", "plain.txt", text)
    assert passage_dict(Hit(1, 0.5, chunk, unpaged, answer))["citation"]["pages"] is None


# --- /ask filters -----------------------------------------------------------------------


def test_doc_ids_restrict_the_answer(client: TestClient) -> None:
    question = "Where are manual pages stored?"
    assert {p["citation"]["doc_id"] for p in ask(client, question=question, k=10)["passages"]} != {NOTE}
    passages = ask(client, question=question, k=10, doc_ids=[NOTE])["passages"]
    assert [p["citation"]["doc_id"] for p in passages] == [NOTE]  # its one passage, though far from the top
    both = ask(client, question=question, k=50, doc_ids=[NOTE, ARTICLE])["passages"]
    assert {p["citation"]["doc_id"] for p in both} == {NOTE, ARTICLE}


def test_section_filter_is_a_case_insensitive_prefix(client: TestClient) -> None:
    prefix = "Chapter 5. The /var Hierarchy › 5.5. /var/cache"
    passages = ask(client, question="cache data", k=20, section=prefix.lower())["passages"]
    assert passages and all(p["citation"]["section"].startswith(prefix) for p in passages)


def test_speaker_filter(client: TestClient) -> None:
    passages = ask(client, question="Why did ISIS attack Russia?", k=20, speaker="AYMENN AL-TAMIMI")["passages"]
    assert passages and {p["citation"]["speaker"] for p in passages} == {"Aymenn Al-Tamimi"}


def test_filters_that_match_nothing_answer_nothing(client: TestClient) -> None:
    body = ask(client, question="manual pages", doc_ids=[FHS], speaker="David Sharp")
    assert body["passages"] == [] and body["answerable"] is False


def test_unknown_document_is_422_naming_it(client: TestClient) -> None:
    response = client.post("/ask", json={"question": "manual pages", "doc_ids": [FHS, "no-such-doc"]})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert "no-such-doc" in error["msg"] and error["loc"] == ["body", "doc_ids", 1]


@pytest.mark.parametrize(
    "filters",
    [
        {"doc_ids": FHS},
        {"doc_ids": []},
        {"doc_ids": None, "section": ""},
        {"doc_ids": [1]},
        {"doc_ids": ["../etc/passwd"]},
        {"doc_ids": ["has space"]},
        {"doc_ids": ["x" * 129]},
        {"doc_ids": [FHS] * 101},
        {"doc_ids": [{"id": FHS}]},
        {"section": ""},
        {"section": "   "},
        {"section": 5},
        {"section": ["Chapter 3"]},
        {"section": "x" * 501},
        {"speaker": "bell\u0007"},
        {"speaker": True},
        {"speaker": {"name": "David Sharp"}},
    ],
)
def test_bad_filters_are_422(client: TestClient, filters: dict[str, object]) -> None:
    response = client.post("/ask", json={"question": "manual pages", **filters})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]


def test_null_filters_are_no_filters(client: TestClient) -> None:
    plain = ask(client, question="manual pages", k=5)
    nulls = ask(client, question="manual pages", k=5, doc_ids=None, section=None, speaker=None)
    assert [p["chunk_id"] for p in nulls["passages"]] == [p["chunk_id"] for p in plain["passages"]]
