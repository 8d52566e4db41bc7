"""`citeqa bench --ingest-corpus PATH`: what ingesting one corpus costs, in one run on this machine.

Embedding throughput in-process, PyTorch as ingest used to embed (sentence-transformers, 64
texts at a time in corpus order) against ONNX Runtime as it embeds now; `citeqa ingest` from
scratch with `--no-onnx` (PyTorch) and without (ONNX); a re-ingest after one file changed (the
embedding cache and the reused encoder); `--if-stale` on the unchanged corpus; and LangChain's
`FAISS.from_documents` over the same documents (RecursiveCharacterTextSplitter 1000/200 +
HuggingFaceEmbeddings). Each measurement is repeated, interleaved, and the median reported.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.machine import describe_machine, machine_line

REPO = Path(__file__).resolve().parents[2]
Say = Callable[[str], None]
CHANGE = "\n\nA paragraph added for the re-ingest benchmark. It changes this one file.\n"


def corpus_texts(corpus: Path) -> tuple[list[str], list[str]]:
    """Passages (with their context) and sentences, as ingest embeds them (its own stage)."""
    from ingest.documents import read_corpus
    from ingest.pipeline import IngestSettings
    from ingest.stages import chunk_parsed, document_to_dict
    from ingest.structure import chrome_keys, typed_spans

    documents = read_corpus(corpus).documents
    chrome = sorted(chrome_keys([[t.span.text for t in typed_spans(d.text, d.segments)] for d in documents]))
    settings = IngestSettings().as_dict()
    passages, sentences = [], []
    for document in documents:
        piece = chunk_parsed(document_to_dict(document), settings, chrome)
        passages += piece["chunk_texts"]
        sentences += piece["sentence_texts"]
    return passages, sentences


def _as_before(embedder: Any, texts: list[str]) -> np.ndarray:
    """Ingest's embedding loop before ONNX: 64 texts at a time, in corpus order."""
    return np.concatenate([embedder.embed_documents(texts[b : b + 64]) for b in range(0, len(texts), 64)])


def embedding_throughput(
    corpus: Path, model_dir: Path, repeat: int, say: Say, torch_too: bool = True
) -> dict[str, Any]:
    from ingest.embedding import SentenceTransformerEmbedder
    from ingest.engines import embed_in_slices  # ingest's own loop, so "as now" is what ingest does
    from ingest.onnx_documents import OnnxDocumentEmbedder

    passages, sentences = corpus_texts(corpus)
    onnx = OnnxDocumentEmbedder(model_dir)
    with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx.export(Path(scratch) / "encoder")
    ways: dict[str, Callable[[list[str]], np.ndarray]] = {}
    if torch_too:  # PyTorch embeds a few-MB corpus's sentences for many minutes: `--no-torch` leaves it out
        torch = SentenceTransformerEmbedder(model_dir)
        ways["torch, as before"] = lambda texts: _as_before(torch, texts)
    ways["onnx, as now"] = lambda texts: embed_in_slices(onnx, texts, "", lambda *_: None)
    rates: dict[str, dict[str, list[float]]] = {way: {"passages": [], "sentences": []} for way in ways}
    cosines: dict[str, float] = {}
    for embed in ways.values():
        embed(passages[:16])  # warm-up
    for run in range(repeat):
        results: dict[str, dict[str, np.ndarray]] = {}
        for way, embed in ways.items():
            results[way] = {}
            for kind, texts in (("passages", passages), ("sentences", sentences)):
                say(f"embedding {len(texts)} {kind}: {way} ({run + 1}/{repeat})")
                begun = time.perf_counter()
                results[way][kind] = embed(texts)
                rates[way][kind].append(len(texts) / (time.perf_counter() - begun))
        for kind in ("passages", "sentences") if torch_too else ():
            agreement = (results["torch, as before"][kind] * results["onnx, as now"][kind]).sum(axis=1)
            cosines[kind] = float(agreement.min())
    return {
        "passages": len(passages),
        "sentences": len(sentences),
        "per_s": {way: {k: statistics.median(v) for k, v in kinds.items()} for way, kinds in rates.items()},
        "runs_per_s": rates,
        "min_cosine_onnx_vs_torch": cosines,
    }


def _run(command: list[str], checkout: Path = REPO) -> tuple[float, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(checkout)}
    begun = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=checkout, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - begun
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-2000:]}")
    return seconds, result.stdout


def _ingest(corpus: Path, index: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", "ingest", "--corpus", str(corpus), "--index", str(index), *flags]


def changed_file(corpus: Path) -> Path:
    """The first Markdown or text file: appending a paragraph to it is a change of that file only."""
    candidates = sorted(p for p in corpus.rglob("*") if p.suffix in {".md", ".txt"} and p.is_file())
    if not candidates:
        raise ValueError(f"{corpus}: no Markdown or text file to change")
    return candidates[0]


def ingest_runs(
    corpus: Path, model_dir: Path, repeat: int, say: Say, baseline: Path | None, torch_too: bool = True
) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {}
    details: dict[str, Any] = {}
    langchain = [sys.executable, "-m", "eval.bench.ingest_cost", "langchain", str(corpus), str(model_dir)]

    def timed(name: str, command: list[str], checkout: Path = REPO) -> str:
        say(f"{name} ({len(seconds.get(name, [])) + 1}/{repeat})")
        took, out = _run(command, checkout)
        seconds.setdefault(name, []).append(took)
        return out.strip().splitlines()[-1].replace(scratch, "<scratch>") if out.strip() else ""

    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as scratch:
            copy, index, torch_index = Path(scratch) / "corpus", Path(scratch) / "index", Path(scratch) / "torch"
            shutil.copytree(corpus, copy)
            if baseline is not None:  # an earlier citeqa, e.g. `git archive <commit> | tar -x -C <folder>`
                timed("ingest, baseline checkout", _ingest(copy.resolve(), Path(scratch) / "baseline"), baseline)
            if torch_too:
                timed("ingest, torch (--no-onnx)", _ingest(copy, torch_index, "--no-onnx"))
            details["full"] = timed("ingest, onnx", _ingest(copy, index))
            timed("ingest --if-stale, unchanged", _ingest(copy, index, "--if-stale"))
            changed = changed_file(copy)
            with changed.open("a", encoding="utf-8") as handle:
                handle.write(CHANGE)
            details["changed_file"] = str(changed.relative_to(copy))
            details["reingest"] = timed("re-ingest, one file changed", _ingest(copy, index))
            details["langchain"] = json.loads(timed("LangChain FAISS.from_documents", langchain))
    return {"seconds": {name: statistics.median(v) for name, v in seconds.items()}, "runs_s": seconds, **details}


def run_ingest_bench(
    corpus: Path, model_dir: Path, say: Say, repeat: int = 3, baseline: Path | None = None, torch_too: bool = True
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": {**describe_machine(), "load_before": os.getloadavg()},
        "corpus": str(corpus),
        "baseline": None if baseline is None else str(baseline),
        "repeat": repeat,
        "embedding": embedding_throughput(corpus, model_dir, repeat, say, torch_too),
        "ingest": ingest_runs(corpus, model_dir, repeat, say, baseline, torch_too),
    }
    report["machine"]["load_after"] = os.getloadavg()
    rates, seconds = report["embedding"]["per_s"], report["ingest"]["seconds"]
    report["ratios"] = {}
    if torch_too:
        report["ratios"] |= {
            "passages/s onnx / torch": rates["onnx, as now"]["passages"] / rates["torch, as before"]["passages"],
            "sentences/s onnx / torch": rates["onnx, as now"]["sentences"] / rates["torch, as before"]["sentences"],
            "ingest time torch / onnx": seconds["ingest, torch (--no-onnx)"] / seconds["ingest, onnx"],
        }
    report["ratios"] |= {
        "ingest time langchain / onnx": seconds["LangChain FAISS.from_documents"] / seconds["ingest, onnx"],
        "re-ingest one file / full ingest": seconds["re-ingest, one file changed"] / seconds["ingest, onnx"],
    }
    if baseline is not None:
        report["ratios"]["ingest time baseline / onnx"] = seconds["ingest, baseline checkout"] / seconds["ingest, onnx"]
    return report


def ingest_markdown(report: dict[str, Any]) -> str:
    embedding, ingest = report["embedding"], report["ingest"]
    lines = [
        "# citeqa ingest benchmark",
        "",
        f"`{report['corpus']}` on this machine ({machine_line(report['machine'])}, "
        f"load average {report['machine']['load_before'][0]:.1f} before and "
        f"{report['machine']['load_after'][0]:.1f} after); medians of {report['repeat']} interleaved runs."
        + (f" Baseline checkout: `{report['baseline']}`." if report["baseline"] else ""),
        "",
        f"## Embedding {embedding['passages']} passages and {embedding['sentences']} sentences (in-process)",
        "",
        "| embedder | passages/s | sentences/s |",
        "|---|---:|---:|",
        *[f"| {way} | {r['passages']:.1f} | {r['sentences']:.1f} |" for way, r in embedding["per_s"].items()],
        "",
        *_cosine_lines(embedding["min_cosine_onnx_vs_torch"]),
        "## Wall time of each command (a fresh process each)",
        "",
        "| run | seconds |",
        "|---|---:|",
        *[f"| {name} | {value:.1f} |" for name, value in ingest["seconds"].items()],
        "",
        f"- full ingest: {ingest['full']}",
        f"- after `{ingest['changed_file']}` changed: {ingest['reingest']}",
        f"- LangChain: {ingest['langchain']['chunks']} chunks; {ingest['langchain']['store_s']:.1f} s to load "
        "HuggingFaceEmbeddings, split and run FAISS.from_documents (the rest: start-up, imports, reading the corpus)",
        "",
        "## Ratios",
        "",
        "| ratio | value |",
        "|---|---:|",
        *[f"| {name} | {value:.2f} |" for name, value in report["ratios"].items()],
        "",
    ]
    return "\n".join(lines)


def _cosine_lines(cosines: dict[str, float]) -> list[str]:
    if not cosines:
        return ["PyTorch left out (`--no-torch`): no cosine between the two in this run.", ""]
    return [
        f"Lowest cosine between the two: passages {cosines['passages']:.7f}, sentences {cosines['sentences']:.7f}.",
        "",
    ]


HISTORY = "## History"


def history_row(number: int, report: dict[str, Any]) -> str:
    """This run as one row of the report's history table (its columns: see docs/bench/ingest.md)."""
    seconds, ratios = report["ingest"]["seconds"], report["ratios"]
    rates, load = report["embedding"]["per_s"]["onnx, as now"], report["machine"]
    baseline = seconds.get("ingest, baseline checkout")
    cells = [
        str(number),
        f"`citeqa bench`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"{load['load_before'][0]:.1f} / {load['load_after'][0]:.1f}",
        f"{rates['passages']:.1f}",
        f"{rates['sentences']:.1f}",
        f"{seconds['ingest, onnx']:.1f}",
        "–" if baseline is None else f"{baseline:.1f}",
        f"{seconds['LangChain FAISS.from_documents']:.1f}",
        f"{ratios.get('ingest time langchain / onnx', float('nan')):.2f}",
        f"{seconds['ingest --if-stale, unchanged']:.1f}",
        f"{seconds['re-ingest, one file changed']:.1f}",
        f"{ratios['re-ingest one file / full ingest']:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def with_history(markdown: str, previous: str, report: dict[str, Any]) -> str:
    """The new report, followed by the previous report's history section with this run's row added,
    so that ingest.md holds the latest run in full and every run as one row."""
    if HISTORY not in previous:
        return markdown
    history = HISTORY + previous.split(HISTORY, 1)[1]
    lines = history.splitlines()
    rows = [i for i, line in enumerate(lines) if line.startswith("| ") and line.split("|")[1].strip().isdigit()]
    if not rows:
        return markdown.rstrip("\n") + "\n\n" + history
    lines.insert(rows[-1] + 1, history_row(len(rows) + 1, report))
    return markdown.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"


def write_ingest_bench(out: Path, report: dict[str, Any]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "ingest.json", out / "ingest.md"]
    previous = paths[1].read_text(encoding="utf-8") if paths[1].exists() else ""
    paths[0].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(with_history(ingest_markdown(report), previous, report), encoding="utf-8")
    return paths


def langchain_build(corpus: Path, model_dir: Path) -> dict[str, Any]:
    """The LangChain recipe over the documents of `corpus`, timed in its own process."""
    from eval.systems import langchain_chunks, langchain_store
    from ingest.documents import read_corpus

    documents = read_corpus(corpus).documents
    begun = time.perf_counter()
    langchain_store(documents, model_dir)
    return {"chunks": len(langchain_chunks(documents)), "store_s": time.perf_counter() - begun}


if __name__ == "__main__" and sys.argv[1:2] == ["langchain"]:
    print(json.dumps(langchain_build(Path(sys.argv[2]), Path(sys.argv[3]))))
