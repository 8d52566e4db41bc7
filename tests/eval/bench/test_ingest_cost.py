"""The ingest benchmark's report, on a made-up result (the real run is `citeqa bench --ingest-corpus`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.bench.ingest_cost import changed_file, write_ingest_bench


def made_up() -> dict[str, Any]:
    seconds = {
        "ingest, baseline checkout": 180.0,
        "ingest, torch (--no-onnx)": 170.0,
        "ingest, onnx": 60.0,
        "ingest --if-stale, unchanged": 1.0,
        "re-ingest, one file changed": 4.0,
        "LangChain FAISS.from_documents": 50.0,
    }
    return {
        "machine": {"cpus": 2, "python": "3.11", "load_before": [1.0, 1, 1], "load_after": [2.0, 1, 1]},
        "corpus": "eval/corpora/pip-docs",
        "baseline": "/tmp/before",
        "repeat": 3,
        "embedding": {
            "passages": 461,
            "sentences": 2238,
            "per_s": {
                "torch, as before": {"passages": 10.0, "sentences": 20.0},
                "onnx, as now": {"passages": 33.0, "sentences": 90.0},
            },
            "min_cosine_onnx_vs_torch": {"passages": 0.9999999, "sentences": 0.9999998},
        },
        "ingest": {
            "seconds": seconds,
            "full": "indexed 40 document(s)",
            "reingest": "3 texts embedded",
            "changed_file": "cli/index.md",
            "langchain": {"chunks": 358, "store_s": 48.0},
        },
        "ratios": {"re-ingest one file / full ingest": 4.0 / 60.0},
    }


def test_report_is_written(tmp_path: Path) -> None:
    json_path, markdown_path = write_ingest_bench(tmp_path, made_up())
    assert json.loads(json_path.read_text(encoding="utf-8"))["repeat"] == 3
    text = markdown_path.read_text(encoding="utf-8")
    assert "| onnx, as now | 33.0 | 90.0 |" in text
    assert "| re-ingest, one file changed | 4.0 |" in text and "| re-ingest one file / full ingest | 0.07 |" in text
    assert "Baseline checkout: `/tmp/before`" in text and "358 chunks" in text


def test_the_changed_file_is_the_first_markdown_or_text_file(tmp_path: Path) -> None:
    for name in ("b.md", "a.html", "c.txt", "sub/a.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert changed_file(tmp_path) == tmp_path / "b.md"


def test_report_without_torch_says_so(tmp_path: Path) -> None:
    report = made_up()
    del report["embedding"]["per_s"]["torch, as before"], report["ingest"]["seconds"]["ingest, torch (--no-onnx)"]
    report["embedding"]["min_cosine_onnx_vs_torch"] = {}
    text = write_ingest_bench(tmp_path, report)[1].read_text(encoding="utf-8")
    assert "PyTorch left out (`--no-torch`)" in text and "torch, as before" not in text
    assert "| onnx, as now | 33.0 | 90.0 |" in text


def test_a_new_run_keeps_the_history_and_adds_its_row(tmp_path: Path) -> None:
    first = write_ingest_bench(tmp_path, made_up())[1].read_text(encoding="utf-8")
    assert "## History" not in first  # no history to keep: the report alone
    history = (
        "## History\n\nRuns so far.\n\n"
        "| run | code | load | p/s | s/s | full | base | lc | lc/full | stale | re | re/full |\n"
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        "| 1 | old | 1.0 / 1.0 | 1.0 | 1.0 | 1.0 | – | 1.0 | 1.00 | 1.0 | 1.0 | 1.00 |\n\nA note after the table.\n"
    )
    (tmp_path / "ingest.md").write_text(first + "\n" + history, encoding="utf-8")
    report = made_up()
    report["ratios"]["ingest time langchain / onnx"] = 50.0 / 60.0
    text = write_ingest_bench(tmp_path, report)[1].read_text(encoding="utf-8")
    assert text.count("## History") == 1 and text.count("# citeqa ingest benchmark") == 1
    row = next(line for line in text.splitlines() if line.startswith("| 2 |"))
    assert row.endswith("| 1.0 / 2.0 | 33.0 | 90.0 | 60.0 | 180.0 | 50.0 | 0.83 | 1.0 | 4.0 | 0.07 |")
    lines = text.splitlines()
    assert lines.index(row) == lines.index(next(line for line in lines if line.startswith("| 1 | old"))) + 1
    assert text.rstrip().endswith("A note after the table.")
