"""The evaluation on real corpora nobody on the project wrote, one of them held out, with floors;
then every answer to every question, asked of the real server, cites text that slices exactly."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval.questions import load_questions
from eval.suite import BY_NAME, run_suite
from tests.conftest import Server, start_server

pytestmark = pytest.mark.integration

CORPORA = ["pip-docs", "mkdocs-html", "devref-pdf", "debian-reference-html", "fhs-pdf", "article-heldout"]
# Set from `citeqa eval --suite` when these floors were written, less a small margin (see the
# table in docs/evaluation.md); raising them is welcome, lowering them is not.
# Measured (hybrid): pip-docs R@5 0.909, MRR@10 0.860 (LangChain 0.717), answer@1 0.545, off-topic
# 6/6, answerable flagged 0/44; mkdocs-html 0.864, 0.721 (0.534), 0.477, 6/6, 0/44; devref-pdf
# 0.841, 0.769 (0.563), 0.591, 6/6, 1/44; debian-reference-html (held out) 1.000, 0.928 (0.777),
# 0.636, 6/6, 2/44; fhs-pdf (held out) 0.955, 0.817 (0.739), 0.591, 6/6, 4/44. The issue's bar
# (answer@1 0.50, MRR 0.15 above LangChain) is not met everywhere yet: pip's MRR margin, MkDocs
# answer@1, the FHS's MRR margin. article-heldout (the article, questions written apart from
# tuning) 1.000, 0.874 (0.707), 0.775, 5/8, 0/40: three of its four near-topic off-topic questions
# (what the article never says about the attack it is about) are not flagged; see docs/evaluation.md.
FLOORS: dict[str, dict[str, float]] = {
    "pip-docs": {"recall@5": 0.88, "mrr@10": 0.83, "answer_hit@1": 0.51, "no_answer_recall": 0.83},
    "mkdocs-html": {"recall@5": 0.86, "mrr@10": 0.69, "answer_hit@1": 0.45, "no_answer_recall": 0.83},
    "devref-pdf": {"recall@5": 0.80, "mrr@10": 0.72, "answer_hit@1": 0.52, "no_answer_recall": 0.83},
    "debian-reference-html": {"recall@5": 0.95, "mrr@10": 0.90, "answer_hit@1": 0.60, "no_answer_recall": 0.83},
    "fhs-pdf": {"recall@5": 0.90, "mrr@10": 0.81, "answer_hit@1": 0.58, "no_answer_recall": 0.83},
    "article-heldout": {"recall@5": 0.95, "mrr@10": 0.84, "answer_hit@1": 0.72, "no_answer_recall": 0.62},
}
MRR_MARGIN_OVER_LANGCHAIN = {
    "pip-docs": 0.10,
    "mkdocs-html": 0.12,
    "devref-pdf": 0.12,
    "debian-reference-html": 0.12,
    "fhs-pdf": 0.07,
    "article-heldout": 0.12,
}
# The issue's limit: at most 10% of answerable questions flagged, on every corpus.
WRONGLY_FLAGGED_CEILING = {
    "pip-docs": 0.10,
    "mkdocs-html": 0.10,
    "devref-pdf": 0.10,
    "debian-reference-html": 0.10,
    "fhs-pdf": 0.10,
    "article-heldout": 0.10,
}


class Suite:
    """Each corpus indexed and evaluated when a test first asks for it, so that `-k pip-docs`
    touches no other corpus (a helper kept off the held-out corpora can run this file)."""

    def __init__(self, root: Path, model_dir: Path) -> None:
        self.root, self.model_dir = root, model_dir
        self._reports: dict[str, dict[str, Any]] = {}

    def report(self, name: str) -> dict[str, Any]:
        if name not in self._reports:
            out = self.root / "report" / name
            self._reports[name] = run_suite(out, self.model_dir, [name], index_root=self.root / "indexes")[name]
        return self._reports[name]

    def index(self, name: str) -> Path:
        self.report(name)
        return self.root / "indexes" / name


@pytest.fixture(scope="module")
def suite(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return Suite(tmp_path_factory.mktemp("suite"), model_dir)


@pytest.mark.parametrize("name", CORPORA)
def test_floors_on_every_corpus(suite: Suite, name: str) -> None:
    systems = suite.report(name)["systems"]
    hybrid = systems["citeqa hybrid"]
    for metric, floor in FLOORS[name].items():
        assert hybrid[metric] >= floor, (name, metric, hybrid[metric])
    assert hybrid["answerable_wrongly_flagged"] <= WRONGLY_FLAGGED_CEILING[name], hybrid
    margin = hybrid["mrr@10"] - systems["LangChain recipe"]["mrr@10"]
    assert margin >= MRR_MARGIN_OVER_LANGCHAIN[name], (name, margin)
    for other in ("bm25s", "RRF (LangChain + bm25s)"):
        assert hybrid["mrr@10"] > systems[other]["mrr@10"], (name, other)


@pytest.mark.parametrize(
    ("name", "held_out"),
    [
        ("pip-docs", False),
        ("mkdocs-html", False),
        ("devref-pdf", False),
        ("debian-reference-html", True),
        ("fhs-pdf", True),
        ("article-heldout", True),
    ],
)
def test_the_held_out_corpora_are_reported_as_such(suite: Suite, name: str, held_out: bool) -> None:
    assert suite.report(name)["corpus"]["held_out"] is held_out


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module", params=CORPORA)
def corpus_server(request: pytest.FixtureRequest, suite: Suite) -> Iterator[Any]:
    name = request.param
    for server in start_server(suite.index(name)):
        yield name, server


def test_every_citation_slices_exactly_through_the_real_server(corpus_server: tuple[str, Server]) -> None:
    name, server = corpus_server
    texts: dict[str, dict[str, Any]] = {}
    checked = 0
    for question in load_questions(BY_NAME[name].questions):
        answer = _post(f"{server.url}/ask", {"question": question.question, "k": 5})
        for passage in answer["passages"]:
            citation = passage["citation"]
            doc_id = citation["doc_id"]
            document = texts.get(doc_id) or texts.setdefault(doc_id, _get(f"{server.url}/documents/{doc_id}"))
            text = document["text"]
            assert text[citation["start"] : citation["end"]] == passage["text"], (name, question.qid)
            if passage["answer"] is not None:
                span = passage["answer"]
                assert text[span["start"] : span["end"]] == span["text"], (name, question.qid)
                assert citation["start"] <= span["start"] < span["end"] <= citation["end"]
            if document.get("pages"):
                starts = document["pages"]
                page = sum(1 for start in starts if start <= citation["start"])
                assert citation["page"] == page, (name, question.qid, citation)
            checked += 1
    assert checked >= 5 * 40
