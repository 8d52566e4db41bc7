"""The offline evaluation of written answers: a question set through the LLM reader, as the
service writes and checks them (`citeqa eval --written --llm-url URL`).

Per answerable question: the share of markers that resolve to a passage holding the evidence,
the share of sentences supported, whether a supported citation covers the evidence; per
unanswerable one: whether it was declined (no supported sentence, or the LLM said so). The
figures say as much about the LLM as about citeqa: those of the small base model that the tests
use (Gemma 3 270M) prove the harness, not the quality of anyone's answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from eval.questions import Question, Span, evidence_spans, is_relevant, load_questions
from service.asking import Asked
from service.llm.client import LLMConfig
from service.llm.reader import Reader
from service.retriever import Retriever


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def judge_written(question: Question, written: dict[str, Any], asked: Asked) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": question.qid,
        "question": question.question,
        "status": written["status"],
        "fallback_reason": written["fallback_reason"],
        "text": written["raw_text"],
        "sentences": len(written["sentences"]),
        "supported": sum(s["supported"] for s in written["sentences"]),
        "dropped_markers": len(written["dropped_markers"]),
    }
    if not question.answerable:
        row["declined"] = not written["answerable"]
        return row
    documents = list(asked.retriever.index.documents.values())
    evidence = evidence_spans(question, documents)
    by_rank = {hit.rank: hit for hit in asked.answer.hits}
    markers = [m for s in written["sentences"] for m in s["markers"]]
    holding = [
        m in by_rank
        and is_relevant(Span(by_rank[m].chunk.doc_id, by_rank[m].chunk.start, by_rank[m].chunk.end), evidence)
        for m in markers
    ]
    row["markers"] = len(markers)
    row["markers_holding_evidence"] = sum(holding)
    row["covers_evidence"] = any(
        is_relevant(Span(c["doc_id"], c["start"], c["end"]), evidence)
        for s in written["sentences"]
        for c in s["citations"]
    )
    return row


def summarise_written(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if "declined" not in r]
    unanswerable = [r for r in rows if "declined" in r]
    markers = sum(r["markers"] for r in answerable)
    sentences = sum(r["sentences"] for r in rows)
    return {
        "questions": len(rows),
        "fell_back": sum(r["status"] == "extractive" for r in rows),
        "markers_holding_evidence": round(sum(r["markers_holding_evidence"] for r in answerable) / markers, 3)
        if markers
        else None,
        "sentences_supported": round(sum(r["supported"] for r in rows) / sentences, 3) if sentences else None,
        "answers_covering_evidence": _share([r["covers_evidence"] for r in answerable]),
        "unanswerable_declined": _share([r["declined"] for r in unanswerable]),
        "dropped_markers": sum(r["dropped_markers"] for r in rows),
    }


async def _written_rows(
    retriever: Retriever, questions: list[Question], config: LLMConfig, passages: int
) -> list[dict[str, Any]]:
    reader = Reader(config, passages)
    rows = []
    try:
        for question in questions:
            answer = retriever.answer(question.question, passages)
            asked = Asked(question.question, "hybrid", answer, [], 0, retriever)
            started = time.perf_counter()
            written = await reader.write(asked)
            row = judge_written(question, written, asked)
            row["seconds"] = round(time.perf_counter() - started, 2)
            rows.append(row)
    finally:
        await reader.aclose()
    return rows


def run_written(
    retriever: Retriever,
    questions_path: Path,
    out: Path,
    config: LLMConfig,
    passages: int = 5,
    limit: int | None = None,
) -> dict[str, Any]:
    questions = load_questions(questions_path)
    if limit is not None:  # the first `limit` answerable and unanswerable questions alike
        answerable = [q for q in questions if q.answerable][:limit]
        unanswerable = [q for q in questions if not q.answerable][: max(1, limit // 4)]
        questions = answerable + unanswerable
    rows = asyncio.run(_written_rows(retriever, questions, config, passages))
    summary = summarise_written(rows)
    report = {
        "llm": {"base_url": config.base_url, "model": config.model, "max_tokens": config.max_tokens},
        "question_file": str(questions_path),
        "summary": summary,
        "answers": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "written.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "written.md").write_text(written_markdown(report), encoding="utf-8")
    return report


def written_markdown(report: dict[str, Any]) -> str:
    summary = report["summary"]
    llm = report["llm"]
    lines = [
        "# Written answers",
        "",
        f"`citeqa eval --written` on {report['question_file']}, LLM at {llm['base_url']}"
        f"{' (' + llm['model'] + ')' if llm['model'] else ''}, at most {llm['max_tokens']} tokens an answer.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| questions | {summary['questions']} |",
        f"| fell back to the extractive answer | {summary['fell_back']} |",
        f"| markers resolving to a passage holding the evidence | {summary['markers_holding_evidence']} |",
        f"| sentences supported by a passage they cite | {summary['sentences_supported']} |",
        f"| answers whose supported citations cover the evidence | {summary['answers_covering_evidence']} |",
        f"| unanswerable questions declined | {summary['unanswerable_declined']} |",
        f"| markers dropped (no such passage) | {summary['dropped_markers']} |",
        "",
        "These figures measure the LLM as much as citeqa's checks. A small base model (such as the Gemma 3 "
        "270M that `make llm-server` serves) invents passage numbers, echoes passages and writes sentences "
        "that nothing supports: its figures prove the harness and exercise the checks, and say nothing "
        "about the quality of written answers. Measure the instruction model you will serve.",
    ]
    return "\n".join(lines) + "\n"
