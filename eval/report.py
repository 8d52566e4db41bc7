"""Write the evaluation: report.md (tables), report.json (everything), recall.png (Recall@k)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLUMNS = [
    ("recall@1", "R@1"),
    ("recall@3", "R@3"),
    ("recall@5", "R@5"),
    ("recall@10", "R@10"),
    ("mrr@10", "MRR@10"),
    ("ndcg@10", "nDCG@10"),
    ("answer_hit@1", "answer@1"),
    ("speaker_accuracy", "speaker"),
    ("no_answer_recall", "off-topic flagged"),
    ("answerable_wrongly_flagged", "answerable flagged"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p95_ms", "p95 ms"),
]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1.0 else f"{value:.1f}"
    return str(value)


def markdown_table(systems: dict[str, dict[str, Any]]) -> str:
    header = "| system | " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    rows = [f"| {name} | " + " | ".join(_cell(s.get(key)) for key, _ in COLUMNS) + " |" for name, s in systems.items()]
    return "\n".join([header, rule, *rows])


def plot_recall(systems: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [1, 3, 5, 10]
    figure, axis = plt.subplots(figsize=(6, 4), dpi=120)
    for name, summary in systems.items():
        axis.plot(ks, [summary[f"recall@{k}"] for k in ks], marker="o", label=name)
    axis.set_xlabel("k")
    axis.set_ylabel("Recall@k (answer in the top k)")
    axis.set_xticks(ks)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    axis.set_title("citeqa evaluation: Recall@k per mode")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_report(out_dir: Path, report: dict[str, Any]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    systems: dict[str, dict[str, Any]] = report["systems"]
    lines = [
        "# citeqa evaluation",
        "",
        f"{report['questions']} questions ({report['answerable']} answerable, "
        f"{report['questions'] - report['answerable']} off-topic) from `{report['question_file']}`; "
        f"index `{report['index']}` (corpus {report['corpus_hash'][:12]}…). A passage is relevant when it covers "
        "at least half of an evidence quote; ranking metrics by ranx.",
        "",
        markdown_table(systems),
        "",
    ]
    if "tuning" in report:
        tuning = report["tuning"]
        lines += [
            "## Tuning",
            "",
            f"Chosen: `{json.dumps(tuning['chosen'])}`; on the set MRR@10 {tuning['on_the_set']['mrr@10']:.3f}; "
            f"{tuning['cross_validated']['folds']}-fold cross-validated MRR@10 "
            f"{tuning['cross_validated']['mrr@10']:.3f}, Recall@1 {tuning['cross_validated']['recall@1']:.3f}.",
            "",
        ]
    if "variants" in report:
        lines += ["## Variants (hybrid)", "", markdown_table(report["variants"]), ""]
    lines += ["## Not at rank 1 (hybrid)", ""]
    lines += [f"- {m['id']} ({m['type']}), rank {m['rank'] or '>10'}: {m['question']}" for m in report["misses"]]
    paths = [out_dir / "report.md", out_dir / "report.json", out_dir / "recall.png"]
    paths[0].write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths[1].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot_recall(systems, paths[2])
    return paths
