"""How well the written answer's check tells a supporting citation from a wrong one, and the
two settings it uses (`service.llm.check.SUPPORTED` and `MARGIN`), chosen leave-one-corpus-out.

For every answerable question of a suite corpus, the service's top-5 passages (what the LLM is
given). When one holds the evidence and another does not, two claims are made from the
evidence, each cited once to the passage that holds it (a citation to keep) and once to the
best-looking passage that does not (one to reject):
- `evidence`: the evidence quote as the document says it (often part of a sentence);
- `restated`: the question followed by the quote, as an answer restates what was asked.
A third claim is `foreign`: the evidence of another question, which none of these passages
holds (an answer's sentence that nothing given supports): every citation of it is to reject.

For a fold, SUPPORTED is the lowest threshold that keeps at most 5% of the other tuning
corpora's foreign claims, then MARGIN the widest that keeps at most 5% of their wrong
citations; both are judged on the corpus left out, and the held-out corpora are only reported.
`citeqa eval --claims` writes docs/eval/claims.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from eval.questions import Span, evidence_spans, is_relevant, load_questions
from eval.suite import SUITE, EvalCorpus, build_eval_index
from service.retriever import Hit

WRONGLY_KEPT = 0.05  # the share of citations to reject that the settings may keep where they are chosen
KINDS = ("evidence", "restated")
THRESHOLDS = [round(float(t), 3) for t in np.arange(0.30, 0.951, 0.005)]
MARGINS = [0.0, 0.02, 0.05, 0.1, 0.2, 1.0]


def holds(hit: Hit, evidence: list[list[Span]]) -> bool:
    return is_relevant(Span(hit.chunk.doc_id, hit.chunk.start, hit.chunk.end), evidence)


def claim_rows(entry: EvalCorpus, index_dir: Path, model_dir: Path) -> list[dict[str, Any]]:
    from ingest.embedding import MODEL_SHA256
    from service.llm.check import ClaimChecker
    from service.retriever import open_retriever

    retriever = open_retriever(index_dir, model_dir, MODEL_SHA256)
    checker = ClaimChecker(retriever)
    documents = list(retriever.index.documents.values())
    answerable = [q for q in load_questions(entry.questions) if q.answerable]
    rows: list[dict[str, Any]] = []
    for number, question in enumerate(answerable):
        hits = retriever.answer(question.question, 5).hits
        if not hits:
            continue

        def scores(claim: str, hits: list[Hit] = hits) -> dict[int, float]:
            query = retriever.embedder.embed_query(claim)
            return {h.rank: checker.support(claim, h.rank, h, query).score for h in hits}

        # Another question's evidence that none of these passages holds.
        for other in answerable[number + 1 :] + answerable[:number]:
            if not any(holds(h, evidence_spans(other, documents)) for h in hits):
                quote = " ".join(other.evidence[0].split())
                rows.append(
                    {"corpus": entry.name, "qid": question.qid, "kind": "foreign", "best": max(scores(quote).values())}
                )
                break
        evidence = evidence_spans(question, documents)
        relevant = {h.rank for h in hits if holds(h, evidence)}
        if not relevant or len(relevant) == len(hits):
            continue
        quote = " ".join(question.evidence[0].split())
        for kind, claim in (("evidence", quote), ("restated", f"{question.question} {quote}")):
            scored = scores(claim)
            right = max(v for rank, v in scored.items() if rank in relevant)
            wrong = max(v for rank, v in scored.items() if rank not in relevant)
            rows.append({"corpus": entry.name, "qid": question.qid, "kind": kind, "right": right, "wrong": wrong})
    return rows


def kept(score: float, best: float, threshold: float, margin: float) -> bool:
    return score >= threshold and score >= best - margin


def rates(rows: list[dict[str, Any]], threshold: float, margin: float) -> dict[str, Any]:
    foreign = [r for r in rows if r["kind"] == "foreign"]
    cited = [r for r in rows if r["kind"] != "foreign"]
    result: dict[str, Any] = {"claims": len(rows)}
    if foreign:
        result["foreign_kept"] = round(float(np.mean([r["best"] >= threshold for r in foreign])), 3)
    if cited:
        result["wrong_kept"] = round(
            float(np.mean([kept(r["wrong"], max(r["right"], r["wrong"]), threshold, margin) for r in cited])), 3
        )
    for kind in KINDS:
        of_kind = [r for r in cited if r["kind"] == kind]
        if of_kind:
            result[f"right_kept_{kind}"] = round(
                float(np.mean([kept(r["right"], max(r["right"], r["wrong"]), threshold, margin) for r in of_kind])), 3
            )
    return result


def choose(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """The lowest threshold keeping at most WRONGLY_KEPT of foreign claims, then the widest margin
    keeping at most WRONGLY_KEPT of wrong citations."""
    threshold = next((t for t in THRESHOLDS if rates(rows, t, 1.0).get("foreign_kept", 0) <= WRONGLY_KEPT), 1.0)
    margin = max((m for m in MARGINS if rates(rows, threshold, m).get("wrong_kept", 0) <= WRONGLY_KEPT), default=0.0)
    return threshold, margin


def decide_claims(rows: list[dict[str, Any]], tuning: list[str], held_out: list[str]) -> dict[str, Any]:
    folds = {}
    for left_out in tuning:
        threshold, margin = choose([r for r in rows if r["corpus"] in tuning and r["corpus"] != left_out])
        left = [r for r in rows if r["corpus"] == left_out]
        folds[left_out] = {"threshold": threshold, "margin": margin, **rates(left, threshold, margin)}
    threshold, margin = choose([r for r in rows if r["corpus"] in tuning])
    held = {name: rates([r for r in rows if r["corpus"] == name], threshold, margin) for name in held_out}
    return {
        "threshold": threshold,
        "margin": margin,
        "wrongly_kept_limit": WRONGLY_KEPT,
        "folds": folds,
        "held_out": held,
    }


def claims_markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Checking a written answer's citations",
        "",
        "Produced by `citeqa eval --claims` (eval/claims.py). A cited passage supports a sentence when its "
        "score reaches the threshold and comes within the margin of the best score of any passage the LLM "
        f"was given. The threshold keeps at most {WRONGLY_KEPT:.0%} of *foreign* claims (another question's "
        "evidence, which no given passage holds) on the tuning corpora it is chosen on; the margin, the widest "
        f"that keeps at most {WRONGLY_KEPT:.0%} of *wrong* citations (the evidence cited to a given passage "
        "that does not hold it). *Right kept*: the evidence cited to its passage, as quoted and restated "
        "after the question. Each tuning corpus is judged with the settings chosen without it; the held-out "
        "corpora with the final ones.",
        "",
        f"Final: threshold **{result['threshold']}**, margin **{result['margin']}** "
        "(service/llm/check.py `SUPPORTED`, `MARGIN`).",
        "",
        "| corpus | threshold | margin | claims | foreign kept | wrong kept | right kept (evidence) "
        "| right kept (restated) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    held = [(name, {**row, "threshold": "final", "margin": "final"}) for name, row in result["held_out"].items()]
    for name, row in [*result["folds"].items(), *held]:
        lines.append(
            f"| {name} | {row['threshold']} | {row['margin']} | {row['claims']} | {row.get('foreign_kept', '–')} "
            f"| {row.get('wrong_kept', '–')} | {row.get('right_kept_evidence', '–')} "
            f"| {row.get('right_kept_restated', '–')} |"
        )
    worst = max(result["folds"].items(), key=lambda item: item[1].get("wrong_kept", 0) + item[1].get("foreign_kept", 0))
    lines += ["", f"Worst left-out corpus: {worst[0]}."]
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
