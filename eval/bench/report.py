"""Write `citeqa bench` results: bench.json, bench.md and plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.bench.machine import machine_line


def _f(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    process, http = report["in_process"], report["http"]
    lines = [
        "# citeqa benchmark",
        "",
        f"One run on this machine ({machine_line(report['machine'])}); "
        "baselines measured in the same run. HTTP load by wrk on 127.0.0.1, every request a distinct question.",
        "",
        "## In-process query latency",
        "",
        "| system | p50 ms | p95 ms |",
        "|---|---:|---:|",
        *[f"| {name} | {_f(r['p50_ms'], 2)} | {_f(r['p95_ms'], 2)} |" for name, r in process.items()],
        "",
        "## HTTP /ask under load",
        "",
        "| server | clients | requests/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in http.items():
        for run in result["runs"]:
            lines.append(
                f"| {name} | {run['concurrency']} | {_f(run['throughput_rps'])} | {_f(run['p50_ms'], 2)} | "
                f"{_f(run['p95_ms'], 2)} | {_f(run['p99_ms'], 2)} | {run['errors']} |"
            )
    lines += [
        "",
        "| server | start to ready (s) | peak RSS (MB) |",
        "|---|---:|---:|",
        *[f"| {name} | {_f(r['ready_s'], 2)} | {_f(r['peak_rss_mb'])} |" for name, r in http.items()],
        "",
        "## Start-up and ingest",
        "",
        f"- `make run` to `/readyz` 200 with `.venv` and `index/` present (warm): "
        f"{_f(report['startup']['warm_ready_s'], 2)} s (median of {len(report['startup']['warm_runs_s'])})",
    ]
    if "cold_ready_s" in report["startup"]:
        lines.append(
            f"- `make run` in a fresh clone (cold: venv, install, ingest): {_f(report['startup']['cold_ready_s'])} s"
        )
    ingest = report["ingest"]
    lines += [
        f"- ingest from scratch: {_f(ingest['seconds'], 2)} s for {ingest['chunks']} passages and "
        f"{ingest['sentences']} sentences ({_f(ingest['texts_embedded_per_s'])} texts/s including model load and "
        "ONNX export)",
        f"- re-ingest of the unchanged corpus (`--if-stale`): {_f(ingest['reingest_unchanged_s'], 2)} s",
        "",
        "## Ratios",
        "",
        "| ratio | value |",
        "|---|---:|",
        *[f"| {name} | {_f(value, 2)} |" for name, value in report["ratios"].items()],
        "",
    ]
    if "scale" in report:
        from eval.bench.scale import scale_markdown

        lines += [scale_markdown(report["scale"]), ""]
    return "\n".join(lines)


def plot_load(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    for name, result in report["http"].items():
        clients = [r["concurrency"] for r in result["runs"]]
        left.plot(clients, [r["throughput_rps"] for r in result["runs"]], marker="o", label=name)
        right.plot(clients, [r["p50_ms"] for r in result["runs"]], marker="o", label=name)
    left.set_title("throughput")
    left.set_ylabel("requests/s")
    right.set_title("median latency")
    right.set_ylabel("ms")
    right.set_yscale("log")
    for axis in (left, right):
        axis.set_xlabel("concurrent clients")
        axis.set_xscale("log", base=2)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_bench(out: Path, report: dict[str, Any]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "bench.json", out / "bench.md", out / "load.png"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    plot_load(report, paths[2])
    if "scale" in report:
        from eval.bench.scale import plot_scale

        paths.append(out / "scale.png")
        plot_scale(report["scale"], paths[-1])
    return paths
