"""The benchmark's arithmetic and reports, on a made-up result (the real run is `citeqa bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.bench.load import LUA, write_questions
from eval.bench.report import markdown, write_bench
from eval.bench.run import percentiles, ratios


def made_up() -> dict[str, Any]:
    def runs(rps: float, p50: float) -> list[dict[str, Any]]:
        return [
            {"concurrency": c, "requests": 100, "throughput_rps": rps * c ** 0.5, "p50_ms": p50 * c,
             "p95_ms": p50 * c * 1.2, "p99_ms": p50 * c * 1.5, "errors": 0}
            for c in (1, 4, 16)
        ]  # fmt: skip

    return {
        "machine": {"cpus": 2, "python": "3.11"},
        "in_process": {
            "citeqa hybrid": {"p50_ms": 3.0, "p95_ms": 4.0},
            "LangChain recipe": {"p50_ms": 8.0, "p95_ms": 9.0},
        },
        "http": {
            "citeqa": {"ready_s": 1.0, "peak_rss_mb": 300.0, "runs": runs(200.0, 4.0)},
            "naive service": {"ready_s": 6.0, "peak_rss_mb": 600.0, "runs": runs(40.0, 10.0)},
        },
        "startup": {"warm_ready_s": 2.0, "warm_runs_s": [2.0, 2.1, 1.9]},
        "ingest": {"seconds": 10.0, "chunks": 33, "sentences": 150, "chunks_per_s": 3.3, "texts_embedded_per_s": 18.3,
                   "reingest_unchanged_s": 0.8},
    }  # fmt: skip


def test_ratios() -> None:
    report = made_up()
    result = ratios(report)
    assert result["http_p50_1_client / langchain_in_process_p50"] == pytest.approx(4.0 / 8.0)
    assert result["throughput_16_clients / naive"] == pytest.approx(5.0)
    assert result["ready_s / naive_ready_s"] == pytest.approx(1 / 6)
    assert result["peak_rss / naive_peak_rss"] == pytest.approx(0.5)


def test_percentiles() -> None:
    stats = percentiles([float(v) for v in range(1, 101)])
    assert stats["p50_ms"] == pytest.approx(50.5) and stats["p95_ms"] == 95.0 and stats["n"] == 100


def test_reports_are_written(tmp_path: Path) -> None:
    report = made_up()
    report["ratios"] = ratios(report)
    paths = write_bench(tmp_path, report)
    text = markdown(report)
    assert "| citeqa | 16 |" in text and "throughput_16_clients / naive" in text
    assert {p.name for p in paths} == {"bench.json", "bench.md", "load.png"}
    assert (tmp_path / "load.png").read_bytes()[:4] == b"\x89PNG"


def test_load_script_and_question_file(tmp_path: Path) -> None:
    assert "CITEQA_RESULT" in LUA.read_text(encoding="utf-8")
    path = write_questions(['Say "hi"', "back\\slash"], tmp_path / "q.txt")
    assert path.read_text(encoding="utf-8").splitlines() == ['Say \\"hi\\"', "back\\\\slash"]
