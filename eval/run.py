"""`citeqa eval`: every mode of the service's Retriever, and the LangChain recipe, on one question set."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.metrics import Tick, misses, run_system, summarise
from eval.questions import load_questions
from eval.systems import bm25_system, langchain_system, retriever_system, rrf_system
from eval.tune import prepare, tune
from ingest.chunking import ChunkerSettings
from ingest.embedding import Embedder
from ingest.index_store import load_index
from ingest.pipeline import IngestSettings, RetrievalSettings, build_index
from service.retriever import MODES, Retriever

VARIANTS: dict[str, tuple[IngestSettings, dict[str, float]]] = {
    "1000/0, context, sentence scoring (default)": (IngestSettings(ChunkerSettings(1000, 0), True), {}),
    "1000/200 overlap": (IngestSettings(ChunkerSettings(1000, 200), True), {}),
    "600/0": (IngestSettings(ChunkerSettings(600, 0), True), {}),
    "400/0": (IngestSettings(ChunkerSettings(400, 0), True), {}),
    "no context prepended": (IngestSettings(ChunkerSettings(1000, 0), False), {}),
    "no sentence scoring": (IngestSettings(ChunkerSettings(1000, 0), True), {"sentence_weight": 0.0}),
}


@dataclass(frozen=True)
class EvalOptions:
    index: Path
    corpus: Path
    questions: Path
    out: Path
    model_dir: Path
    baseline: bool = True
    tune: bool = False
    variants: bool = False


@contextmanager
def progress_bar(total: int) -> Iterator[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        yield progress


def _variants(options: EvalOptions, embedder: Embedder, tick: Tick) -> dict[str, dict[str, Any]]:
    questions = load_questions(options.questions)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for number, (name, (ingest_settings, overrides)) in enumerate(VARIANTS.items()):
            target = Path(scratch) / f"variant-{number}"
            build_index(options.corpus, target, embedder, ingest_settings)
            index = load_index(target)
            settings = RetrievalSettings(**{**index.manifest["retrieval"], **overrides})
            retriever = Retriever(index, embedder, settings)
            documents = list(index.documents.values())
            outcomes = run_system(retriever_system(retriever, "hybrid"), questions, documents, tick)
            results[name] = summarise(outcomes)
    return results


def evaluate(options: EvalOptions, retriever: Retriever) -> tuple[dict[str, Any], list[Path]]:
    questions = load_questions(options.questions)
    documents = list(retriever.index.documents.values())
    systems: dict[str, dict[str, Any]] = {}
    report: dict[str, Any] = {
        "question_file": str(options.questions),
        "questions": len(questions),
        "answerable": sum(q.answerable for q in questions),
        "index": str(options.index),
        "corpus_hash": retriever.index.manifest["corpus"]["hash"],
        "retrieval_settings": retriever.index.manifest.get("retrieval"),
    }
    steps = len(questions) * (len(MODES) + 3 * options.baseline + options.tune + len(VARIANTS) * options.variants)
    with progress_bar(steps) as progress:
        task = progress.add_task("evaluating", total=steps)

        def tick() -> None:
            progress.advance(task)

        for mode in MODES:
            progress.update(task, description=f"citeqa {mode}")
            clear = getattr(retriever.embedder, "clear_cache", None)
            if clear is not None:  # each mode's latency pays for its own query embeddings
                clear()
            outcomes = run_system(retriever_system(retriever, mode), questions, documents, tick)
            systems[f"citeqa {mode}"] = summarise(outcomes)
            if mode == "hybrid":
                report["misses"] = misses(outcomes)
        if options.baseline:
            progress.update(task, description="LangChain recipe (building)")
            baseline = langchain_system(documents, options.model_dir)
            progress.update(task, description="LangChain recipe")
            systems["LangChain recipe"] = summarise(run_system(baseline, questions, documents, tick))
            progress.update(task, description="bm25s, RRF")
            lexical = bm25_system(documents)
            systems["bm25s"] = summarise(run_system(lexical, questions, documents, tick))
            systems["RRF (LangChain + bm25s)"] = summarise(
                run_system(rrf_system(baseline, lexical), questions, documents, tick)
            )
        if options.tune:
            progress.update(task, description="tuning")
            report["tuning"] = tune(retriever, prepare(retriever, questions, tick))
        if options.variants:
            progress.update(task, description="variants")
            report["variants"] = _variants(options, retriever.embedder, tick)
    report["systems"] = systems
    from eval.report import write_report

    return report, write_report(options.out, report)
