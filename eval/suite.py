"""The evaluation on every corpus: the article and real corpora nobody on the project wrote.

Each corpus is indexed as `citeqa ingest` would (real model, ONNX query encoder), then its
hand-written questions go through the service's Retriever and the baselines in one run.
One corpus is held out: its questions were never looked at while tuning.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.run import EvalOptions, evaluate

EVAL_DIR = Path(__file__).resolve().parent
REPO = EVAL_DIR.parent


@dataclass(frozen=True)
class EvalCorpus:
    name: str
    corpus: Path
    questions: Path
    description: str
    held_out: bool = False


SUITE = [
    EvalCorpus("article", REPO / "corpus", EVAL_DIR / "questions.jsonl", "The Insider article (plain text)"),
    # The same article, asked by someone who saw neither eval/questions.jsonl nor the code: the
    # check that what was tuned on the article's own set holds for other people's questions.
    EvalCorpus(
        "article-heldout",
        REPO / "corpus",
        EVAL_DIR / "questions/article-heldout.jsonl",
        "The Insider article, questions written apart from tuning",
        held_out=True,
    ),
    EvalCorpus(
        "pip-docs", EVAL_DIR / "corpora/pip-docs", EVAL_DIR / "questions/pip-docs.jsonl", "pip 25.3 docs (Markdown)"
    ),
    EvalCorpus(
        "mkdocs-html",
        EVAL_DIR / "corpora/mkdocs-html",
        EVAL_DIR / "questions/mkdocs-html.jsonl",
        "MkDocs 1.4.2 docs (HTML)",
    ),
    EvalCorpus(
        "devref-pdf",
        EVAL_DIR / "corpora/devref-pdf",
        EVAL_DIR / "questions/devref-pdf.jsonl",
        "Debian Developer's Reference 12.18 (PDF, Sphinx)",
    ),
    EvalCorpus(
        "debian-reference-html",
        EVAL_DIR / "corpora/debian-reference-html",
        EVAL_DIR / "questions/debian-reference-html.jsonl",
        "Debian Reference 2.100, 4 chapters (DocBook HTML)",
        held_out=True,
    ),
    EvalCorpus(
        "fhs-pdf",
        EVAL_DIR / "corpora/fhs-pdf",
        EVAL_DIR / "questions/fhs-pdf.jsonl",
        "Filesystem Hierarchy Standard 3.0 (PDF)",
        held_out=True,
    ),
    # Five more genres (issue 19), each with questions written by a helper from the documents alone.
    EvalCorpus(
        "docker-cli-md",
        EVAL_DIR / "corpora/docker-cli-md",
        EVAL_DIR / "questions/docker-cli-md.jsonl",
        "Docker 20.10 command-line reference, 54 commands (Markdown)",
    ),
    EvalCorpus(
        "debian-faq-html",
        EVAL_DIR / "corpora/debian-faq-html",
        EVAL_DIR / "questions/debian-faq-html.jsonl",
        "The Debian GNU/Linux FAQ 11.1 (DocBook HTML)",
    ),
    EvalCorpus(
        "python-tutorial-html",
        EVAL_DIR / "corpora/python-tutorial-html",
        EVAL_DIR / "questions/python-tutorial-html.jsonl",
        "The Python 3.11 tutorial (Sphinx HTML)",
    ),
    EvalCorpus(
        "git-man-html",
        EVAL_DIR / "corpora/git-man-html",
        EVAL_DIR / "questions/git-man-html.jsonl",
        "Twelve git manual pages, git 2.39 (AsciiDoc HTML)",
        held_out=True,
    ),
    EvalCorpus(
        "python-whatsnew-html",
        EVAL_DIR / "corpora/python-whatsnew-html",
        EVAL_DIR / "questions/python-whatsnew-html.jsonl",
        "What's New in Python 3.10 and 3.11 (release notes, Sphinx HTML)",
        held_out=True,
    ),
]
BY_NAME = {c.name: c for c in SUITE}


def build_eval_index(corpus: Path, target: Path, model_dir: Path) -> None:
    from ingest.onnx_documents import OnnxDocumentEmbedder
    from ingest.pipeline import IngestSettings, build_index

    embedder = OnnxDocumentEmbedder(model_dir)  # as `citeqa ingest` builds it
    build_index(corpus, target, embedder, IngestSettings(onnx_encoder=True), export_encoder=embedder.export)


def evaluate_corpus(entry: EvalCorpus, index_dir: Path, out: Path, model_dir: Path) -> dict[str, Any]:
    from ingest.embedding import MODEL_SHA256
    from service.retriever import open_retriever

    retriever = open_retriever(index_dir, model_dir, MODEL_SHA256)
    options = EvalOptions(index_dir, entry.corpus, entry.questions, out / entry.name, model_dir, baseline=True)
    report, _ = evaluate(options, retriever)
    report["corpus"] = {"name": entry.name, "description": entry.description, "held_out": entry.held_out}
    return report


SUITE_COLUMNS = [
    ("recall@1", "R@1"),
    ("recall@5", "R@5"),
    ("mrr@10", "MRR@10"),
    ("answer_hit@1", "answer@1"),
    ("highlight_rate", "highlighted"),
    ("highlight_precision", "highlight right"),
    ("no_answer_recall", "unanswerable flagged"),
    ("near_topic_flagged", "near-topic flagged"),
    ("answerable_wrongly_flagged", "answerable flagged"),
]


def suite_table(reports: dict[str, dict[str, Any]]) -> str:
    from eval.report import _cell

    lines = [
        "| corpus | system | " + " | ".join(label for _, label in SUITE_COLUMNS) + " |",
        "|---|---|" + "---:|" * len(SUITE_COLUMNS),
    ]
    for name, report in reports.items():
        label = name + (" (held out)" if report["corpus"]["held_out"] else "")
        for system, summary in report["systems"].items():
            if system in ("citeqa dense", "citeqa lexical"):
                continue
            cells = " | ".join(_cell(summary.get(key)) for key, _ in SUITE_COLUMNS)
            lines.append(f"| {label} | {system} | {cells} |")
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def worst_first_table(reports: dict[str, dict[str, Any]]) -> str:
    """One row per corpus, worst MRR@10 first: the README's evaluation table."""
    lines = [
        "| corpus | R@5 | MRR@10 (LangChain, margin) | answer@1 | highlighted (right) "
        "| unanswerable flagged (near-topic) | answerable flagged |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = sorted(reports.items(), key=lambda item: item[1]["systems"]["citeqa hybrid"]["mrr@10"])
    for name, report in rows:
        ours, theirs = report["systems"]["citeqa hybrid"], report["systems"]["LangChain recipe"]
        label = f"{name} (held out)" if report["corpus"]["held_out"] else name
        margin = ours["mrr@10"] - theirs["mrr@10"]
        lines.append(
            f"| {label} | {ours['recall@5']:.3f} | {ours['mrr@10']:.3f} ({theirs['mrr@10']:.3f}, {margin:+.3f}) "
            f"| {ours['answer_hit@1']:.3f} | {_share(ours.get('highlight_rate'))} "
            f"({_share(ours.get('highlight_precision'))}) | {_share(ours.get('no_answer_recall'))} "
            f"({_share(ours.get('near_topic_flagged'))}) | {_share(ours.get('answerable_wrongly_flagged'))} |"
        )
    return "\n".join(lines)


def run_suite(
    out: Path, model_dir: Path, names: list[str] | None = None, index_root: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Index and evaluate each corpus; the indexes go to `index_root/<name>` (kept) or a scratch
    folder. A corpus that two question sets share (the article's) is indexed once."""
    out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict[str, Any]] = {}
    indexed: dict[Path, Path] = {}
    with tempfile.TemporaryDirectory(prefix="citeqa-suite-") as scratch:
        for entry in SUITE:
            if names and entry.name not in names:
                continue
            if entry.corpus not in indexed:
                indexed[entry.corpus] = (index_root or Path(scratch)) / entry.name
                build_eval_index(entry.corpus, indexed[entry.corpus], model_dir)
            reports[entry.name] = evaluate_corpus(entry, indexed[entry.corpus], out, model_dir)
    from eval.bench.machine import describe_machine, machine_line

    machine = describe_machine()
    for report in reports.values():
        report["machine"] = machine
    (out / "suite.json").write_text(json.dumps(reports, indent=2, default=str), encoding="utf-8")
    heading = f"# citeqa on every corpus\n\nMeasured on {machine_line(machine)}.\n\n"
    tables = worst_first_table(reports) + "\n\nEvery system:\n\n" + suite_table(reports)
    (out / "suite.md").write_text(heading + tables + "\n", encoding="utf-8")
    return reports
