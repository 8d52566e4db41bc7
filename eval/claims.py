"""How well the written answer's check tells a supporting citation from a wrong one, and the
threshold it uses (`service.llm.check.SUPPORTED`), chosen leave-one-corpus-out.

For every answerable question of a suite corpus, the service's top-5 passages: when one holds
the evidence and another does not, two claims are made from the evidence, each cited once to
the passage that holds it (a citation that should be kept) and once to the best-looking passage
that does not (one that should be rejected):
- `evidence`: the evidence quote as the document says it (often part of a sentence);
- `restated`: the question followed by the quote, as an answer restates what was asked.
The threshold for a fold is the lowest that wrongly keeps at most 5% of the other tuning
corpora's rejected citations; it is judged on the corpus left out, and the held-out corpora are
only reported. `citeqa eval --claims` writes docs/eval/claims.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from eval.questions import Span, evidence_spans, is_relevant, load_questions
from eval.suite import SUITE, EvalCorpus, build_eval_index

WRONGLY_KEPT = 0.05  # the share of wrong citations a threshold may keep on the corpora it is chosen on
KINDS = ("evidence", "restated")


def claim_rows(entry: EvalCorpus, index_dir: Path, model_dir: Path) -> list[dict[str, Any]]:
    from ingest.embedding import MODEL_SHA256
    from service.llm.check import ClaimChecker
    from service.retriever import open_retriever

    retriever = open_retriever(index_dir, model_dir, MODEL_SHA256)
    checker = ClaimChecker(retriever)
    documents = list(retriever.index.documents.values())
    rows = []
    for question in load_questions(entry.questions):
        if not question.answerable:
            continue
        hits = retriever.answer(question.question, 5).hits
        evidence = evidence_spans(question, documents)
        relevant = [h for h in hits if is_relevant(Span(h.chunk.doc_id, h.chunk.start, h.chunk.end), evidence)]
        wrong = [h for h in hits if h not in relevant]
        if not relevant or not wrong:
            continue
        quote = " ".join(question.evidence[0].split())
        for kind, claim in (("evidence", quote), ("restated", f"{question.question} {quote}")):
            query = retriever.embedder.embed_query(claim)
            kept = max(checker.support(claim, h.rank, h, query).score for h in relevant)
            rejected = max(checker.support(claim, h.rank, h, query).score for h in wrong)
            rows.append({"corpus": entry.name, "qid": question.qid, "kind": kind, "right": kept, "wrong": rejected})
    return rows


def threshold_for(rows: list[dict[str, Any]]) -> float:
    """The lowest threshold keeping at most WRONGLY_KEPT of these rows' wrong citations."""
    wrong = np.sort(np.asarray([r["wrong"] for r in rows], dtype=np.float64))
    allowed = int(np.floor(WRONGLY_KEPT * len(wrong)))
    return float(wrong[len(wrong) - allowed - 1] + 1e-4) if len(wrong) else 0.0


def judged(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    result: dict[str, Any] = {"claims": len(rows)}
    if rows:
        result["wrongly_kept"] = round(float(np.mean([r["wrong"] >= threshold for r in rows])), 3)
    for kind in KINDS:
        of_kind = [r for r in rows if r["kind"] == kind]
        if of_kind:
            result[f"kept_{kind}"] = round(float(np.mean([r["right"] >= threshold for r in of_kind])), 3)
    return result


def decide_claims(rows: list[dict[str, Any]], tuning: list[str], held_out: list[str]) -> dict[str, Any]:
    folds = {}
    for left_out in tuning:
        chosen = threshold_for([r for r in rows if r["corpus"] in tuning and r["corpus"] != left_out])
        folds[left_out] = {
            "threshold": round(chosen, 4),
            **judged([r for r in rows if r["corpus"] == left_out], chosen),
        }
    final = threshold_for([r for r in rows if r["corpus"] in tuning])
    held = {name: judged([r for r in rows if r["corpus"] == name], final) for name in held_out}
    return {"threshold": round(final, 4), "wrongly_kept_limit": WRONGLY_KEPT, "folds": folds, "held_out": held}


def claims_markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Checking a written answer's citations",
        "",
        "Produced by `citeqa eval --claims` (eval/claims.py). A citation is kept when its support score "
        f"reaches the threshold; the threshold keeps at most {WRONGLY_KEPT:.0%} of wrong citations on the "
        "tuning corpora it is chosen on. Each corpus below is judged with the threshold chosen without it "
        "(folds), the held-out corpora with the final one.",
        "",
        f"Final threshold: **{result['threshold']}** (service/llm/check.py `SUPPORTED`).",
        "",
        "| corpus | threshold | claims | wrong citations kept | right kept (evidence) | right kept (restated) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in [
        *result["folds"].items(),
        *((n, {**r, "threshold": "final"}) for n, r in result["held_out"].items()),
    ]:
        lines.append(
            f"| {name} | {row['threshold']} | {row['claims']} | {row.get('wrongly_kept', '–')} | "
            f"{row.get('kept_evidence', '–')} | {row.get('kept_restated', '–')} |"
        )
    return "\n".join(lines) + "\n"


def run_claims(out: Path, model_dir: Path, index_root: Path) -> dict[str, Any]:
    built: dict[Path, Path] = {}
    rows: list[dict[str, Any]] = []
    for entry in SUITE:
        if entry.corpus not in built:
            built[entry.corpus] = index_root / entry.name
            if not (built[entry.corpus] / "manifest.json").exists():
                build_eval_index(entry.corpus, built[entry.corpus], model_dir)
        rows.extend(claim_rows(entry, built[entry.corpus], model_dir))
    tuning = [e.name for e in SUITE if not e.held_out]
    held_out = [e.name for e in SUITE if e.held_out]
    result = decide_claims(rows, tuning, held_out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "claims.json").write_text(json.dumps({**result, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    (out / "claims.md").write_text(claims_markdown(result), encoding="utf-8")
    return result
