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
from eval.suite import BY_NAME, SUITE, run_suite
from tests.conftest import Server, start_server

pytestmark = pytest.mark.integration

CORPORA = [entry.name for entry in SUITE if entry.name != "article"]  # the article: test_quality.py
# What `citeqa eval --suite` measured (hybrid; docs/eval/suite.md names the CPU), and the floors
# derived from it: every floor is two questions below the measured value, since the figures move
# with the CPU (an AVX2-only machine once lost one FHS question against a floor one question
# above it). A share of N questions moves by 1/N a question; so does MRR@10 at most. Raising
# the measured values after a real gain is welcome; lowering them needs the suite's new report.
MEASURED: dict[str, dict[str, float]] = {
    "article-heldout": {
        "recall@5": 1.0,
        "mrr@10": 0.875,
        "answer_hit@1": 0.775,
        "no_answer_recall": 0.2857,
        "answerable_wrongly_flagged": 0.0,
        "mrr_margin": 0.1679,
        "answerable": 40,
        "unanswerable": 14,
    },
    "pip-docs": {
        "recall@5": 0.9091,
        "mrr@10": 0.8456,
        "answer_hit@1": 0.5227,
        "no_answer_recall": 0.5,
        "answerable_wrongly_flagged": 0.0,
        "mrr_margin": 0.1289,
        "answerable": 44,
        "unanswerable": 12,
    },
    "mkdocs-html": {
        "recall@5": 0.8636,
        "mrr@10": 0.721,
        "answer_hit@1": 0.4773,
        "no_answer_recall": 0.3333,
        "answerable_wrongly_flagged": 0.0,
        "mrr_margin": 0.1873,
        "answerable": 44,
        "unanswerable": 12,
    },
    "devref-pdf": {
        "recall@5": 0.8409,
        "mrr@10": 0.7571,
        "answer_hit@1": 0.5455,
        "no_answer_recall": 0.5,
        "answerable_wrongly_flagged": 0.0227,
        "mrr_margin": 0.194,
        "answerable": 44,
        "unanswerable": 12,
    },
    "debian-reference-html": {
        "recall@5": 1.0,
        "mrr@10": 0.9318,
        "answer_hit@1": 0.6364,
        "no_answer_recall": 0.75,
        "answerable_wrongly_flagged": 0.0227,
        "mrr_margin": 0.1547,
        "answerable": 44,
        "unanswerable": 12,
    },
    "fhs-pdf": {
        "recall@5": 0.9545,
        "mrr@10": 0.8313,
        "answer_hit@1": 0.6136,
        "no_answer_recall": 0.8333,
        "answerable_wrongly_flagged": 0.0909,
        "mrr_margin": 0.0923,
        "answerable": 44,
        "unanswerable": 12,
    },
    "docker-cli-md": {
        "recall@5": 0.875,
        "mrr@10": 0.7763,
        "answer_hit@1": 0.5288,
        "no_answer_recall": 0.5,
        "answerable_wrongly_flagged": 0.0288,
        "mrr_margin": 0.0532,
        "answerable": 104,
        "unanswerable": 12,
    },
    "debian-faq-html": {
        "recall@5": 0.956,
        "mrr@10": 0.8409,
        "answer_hit@1": 0.5385,
        "no_answer_recall": 0.8333,
        "answerable_wrongly_flagged": 0.033,
        "mrr_margin": 0.1885,
        "answerable": 91,
        "unanswerable": 12,
    },
    "python-tutorial-html": {
        "recall@5": 0.9891,
        "mrr@10": 0.8428,
        "answer_hit@1": 0.5978,
        "no_answer_recall": 0.5833,
        "answerable_wrongly_flagged": 0.0,
        "mrr_margin": 0.1156,
        "answerable": 92,
        "unanswerable": 12,
    },
    "git-man-html": {
        "recall@5": 0.8116,
        "mrr@10": 0.6025,
        "answer_hit@1": 0.2609,
        "no_answer_recall": 0.4167,
        "answerable_wrongly_flagged": 0.0,
        "mrr_margin": 0.089,
        "answerable": 69,
        "unanswerable": 12,
    },
    "python-whatsnew-html": {
        "recall@5": 0.9697,
        "mrr@10": 0.917,
        "answer_hit@1": 0.7071,
        "no_answer_recall": 0.3636,
        "answerable_wrongly_flagged": 0.0808,
        "mrr_margin": 0.2493,
        "answerable": 99,
        "unanswerable": 11,
    },
}
QUESTIONS_BELOW = 2
# The one corpus where a baseline led when measured: on Docker's CLI reference, RRF of the
# LangChain recipe and bm25s reached MRR@10 0.789 against citeqa's 0.776.
RRF_LEAD = {"docker-cli-md": 0.013}


def floor(name: str, metric: str) -> float:
    """The measured value less two questions' worth of it."""
    measured = MEASURED[name]
    questions = measured["unanswerable"] if metric == "no_answer_recall" else measured["answerable"]
    return measured[metric] - QUESTIONS_BELOW / questions


FLOORED = ("recall@5", "mrr@10", "answer_hit@1", "no_answer_recall", "mrr_margin")


def test_every_floor_is_two_questions_below_what_was_measured() -> None:
    for name in CORPORA:
        for metric in FLOORED:
            count = MEASURED[name]["unanswerable" if metric == "no_answer_recall" else "answerable"]
            assert MEASURED[name][metric] - floor(name, metric) >= 2 / count - 1e-9


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
    hybrid = dict(systems["citeqa hybrid"])
    hybrid["mrr_margin"] = hybrid["mrr@10"] - systems["LangChain recipe"]["mrr@10"]
    for metric in FLOORED:
        assert hybrid[metric] >= floor(name, metric), (name, metric, hybrid[metric], floor(name, metric))
    # At most two more answerable questions refused than measured.
    measured = MEASURED[name]
    ceiling = measured["answerable_wrongly_flagged"] + QUESTIONS_BELOW / measured["answerable"]
    assert hybrid["answerable_wrongly_flagged"] <= ceiling, (name, hybrid["answerable_wrongly_flagged"])
    for other in ("bm25s", "RRF (LangChain + bm25s)"):
        lead = RRF_LEAD.get(name) if other.startswith("RRF") else None
        if lead is None:
            assert hybrid["mrr@10"] > systems[other]["mrr@10"], (name, other)
        else:  # a baseline that led when measured may lead by no more than that, plus two questions
            behind = systems[other]["mrr@10"] - hybrid["mrr@10"]
            assert behind <= lead + QUESTIONS_BELOW / measured["answerable"], (name, other, behind)


def test_at_least_two_corpora_are_held_out_and_the_rest_tune() -> None:
    held_out = {entry.name for entry in SUITE if entry.held_out}
    assert {"debian-reference-html", "fhs-pdf", "git-man-html", "python-whatsnew-html", "article-heldout"} == held_out
    assert len(SUITE) - len(held_out) >= 7


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
