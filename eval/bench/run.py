"""`citeqa bench`: speed measured side by side with what a user would otherwise run, on one
machine in one run, and reported as ratios to those baselines."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.bench.load import Running, free_port, started, write_questions, wrk
from eval.bench.machine import describe_machine
from eval.questions import load_questions

REPO = Path(__file__).resolve().parents[2]
Say = Callable[[str], None]


@dataclass(frozen=True)
class BenchOptions:
    index: Path
    corpus: Path
    out: Path
    model_dir: Path
    seconds: float = 8.0
    concurrency: tuple[int, ...] = (1, 4, 16)
    queries: int = 200
    cold: bool = False
    scale_sizes: tuple[int, ...] = field(default_factory=tuple)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "n": len(ordered),
    }


def distinct_questions(count: int, tag: str) -> list[str]:
    base = [q.question for q in load_questions()]
    return [f"{base[i % len(base)]} ({tag} {i})" for i in range(count)]


def timed(call: Callable[[str], object], questions: list[str]) -> dict[str, float]:
    for question in questions[:5]:
        call(question + " warm-up")
    samples = []
    for question in questions:
        begun = time.perf_counter()
        call(question)
        samples.append((time.perf_counter() - begun) * 1000)
    return percentiles(samples)


def in_process(options: BenchOptions, say: Say) -> dict[str, Any]:
    import faiss

    from eval.systems import langchain_store
    from ingest.embedding import MODEL_SHA256
    from service.retriever import MODES, open_retriever

    faiss.omp_set_num_threads(1)
    retriever = open_retriever(options.index, options.model_dir, MODEL_SHA256)
    results: dict[str, Any] = {}
    for mode in MODES:
        say(f"in-process {mode}")

        def ask(question: str, mode: str = mode) -> object:
            return retriever.answer(question, 5, mode)

        results[f"citeqa {mode}"] = timed(ask, distinct_questions(options.queries, mode))
    say("in-process LangChain recipe")
    store = langchain_store(list(retriever.index.documents.values()), options.model_dir)

    def similarity_search(question: str) -> object:
        return store.similarity_search(question, k=5)

    results["LangChain recipe"] = timed(similarity_search, distinct_questions(options.queries, "lc"))
    return results


def under_load(server: Running, options: BenchOptions, questions: Path, say: Say, name: str) -> dict[str, Any]:
    runs = []
    for concurrency in options.concurrency:
        say(f"{name}: {concurrency} client(s) for {options.seconds:g}s")
        runs.append(wrk(server.url, concurrency, options.seconds, questions))
    return {"ready_s": server.ready_s, "peak_rss_mb": server.peak_rss_mb(), "runs": runs}


def http(options: BenchOptions, say: Say) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CITEQA_LOG_LEVEL": "warning"}
    with tempfile.TemporaryDirectory() as scratch:
        questions = write_questions([q.question for q in load_questions()], Path(scratch) / "questions.txt")
        port = free_port()
        citeqa = [sys.executable, "-m", "service.cli", "serve", "--index", str(options.index), "--port", str(port)]
        with started(citeqa, port, REPO, env) as server:
            ours = under_load(server, options, questions, say, "citeqa")
        port = free_port()
        naive = [
            sys.executable, "-m", "eval.bench.naive_service", "--corpus", str(options.corpus),
            "--model", str(options.model_dir), "--port", str(port),
        ]  # fmt: skip
        with started(naive, port, REPO, env) as server:
            theirs = under_load(server, options, questions, say, "naive service")
    return {"citeqa": ours, "naive service": theirs}


def make_run_ready(cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from `make run` to /readyz 200, and the server's peak RSS."""
    port = free_port()
    with started(["make", "run", f"PORT={port}"], port, cwd, {**env, "PORT": str(port)}, timeout=1800) as server:
        return server.ready_s, server.peak_rss_mb()


def startup(options: BenchOptions, say: Say) -> dict[str, Any]:
    env = {**os.environ, "CITEQA_LOG_LEVEL": "warning"}
    say("warm start: make run with .venv and index present")
    make_run_ready(REPO, env)  # makes sure both exist and are current
    warm = [make_run_ready(REPO, env)[0] for _ in range(3)]
    result: dict[str, Any] = {"warm_ready_s": statistics.median(warm), "warm_runs_s": warm}
    if options.cold:
        say("cold start: make run in a fresh clone (venv, install, ingest)")
        with tempfile.TemporaryDirectory() as scratch:
            clone = Path(scratch) / "citeqa"
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
            result["cold_ready_s"], _ = make_run_ready(clone, env)
    return result


def ingest(options: BenchOptions, say: Say) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "index"
        command = [
            sys.executable,
            "-m",
            "service.cli",
            "ingest",
            "--corpus",
            str(options.corpus),
            "--index",
            str(target),
        ]
        say("ingest from scratch")
        begun = time.perf_counter()
        subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True)
        full = time.perf_counter() - begun
        manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
        say("re-ingest of the unchanged corpus")
        begun = time.perf_counter()
        subprocess.run([*command, "--if-stale"], env=env, cwd=REPO, check=True, capture_output=True)
        again = time.perf_counter() - begun
    counts = manifest["counts"]
    return {
        "seconds": full,
        "chunks": counts["chunks"],
        "sentences": counts["sentences"],
        "chunks_per_s": counts["chunks"] / full,
        "texts_embedded_per_s": (counts["chunks"] + counts["sentences"]) / full,
        "reingest_unchanged_s": again,
    }


def ratios(report: dict[str, Any]) -> dict[str, float]:
    process = report["in_process"]
    served = {run["concurrency"]: run for run in report["http"]["citeqa"]["runs"]}
    naive = {run["concurrency"]: run for run in report["http"]["naive service"]["runs"]}
    langchain = process["LangChain recipe"]["p50_ms"]
    result = {
        "http_p50_1_client / langchain_in_process_p50": served[1]["p50_ms"] / langchain,
        "in_process_hybrid_p50 / langchain_in_process_p50": process["citeqa hybrid"]["p50_ms"] / langchain,
    }
    for concurrency in served:
        if concurrency in naive:
            result[f"throughput_{concurrency}_clients / naive"] = (
                served[concurrency]["throughput_rps"] / naive[concurrency]["throughput_rps"]
            )
            result[f"p50_{concurrency}_clients / naive"] = served[concurrency]["p50_ms"] / naive[concurrency]["p50_ms"]
    result["ready_s / naive_ready_s"] = report["http"]["citeqa"]["ready_s"] / report["http"]["naive service"]["ready_s"]
    result["peak_rss / naive_peak_rss"] = (
        report["http"]["citeqa"]["peak_rss_mb"] / report["http"]["naive service"]["peak_rss_mb"]
    )
    return result


def run_bench(options: BenchOptions, say: Say) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": describe_machine(),
        "options": {"seconds": options.seconds, "concurrency": list(options.concurrency), "queries": options.queries},
    }
    report["in_process"] = in_process(options, say)
    report["http"] = http(options, say)
    report["startup"] = startup(options, say)
    report["ingest"] = ingest(options, say)
    report["ratios"] = ratios(report)
    if options.scale_sizes:
        from eval.bench.scale import run_scale

        report["scale"] = run_scale(options.scale_sizes, say)
    return report
