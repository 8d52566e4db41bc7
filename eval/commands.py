"""The `citeqa eval` and `citeqa bench` (eval/bench/command.py) commands, added to the CLI
through the `citeqa.commands` entry point (pyproject.toml): the service never imports eval."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from eval.bench.command import register_bench
from service.cli import _fail
from service.settings import Settings

if TYPE_CHECKING:
    from service.retriever import Retriever


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from eval.run import EvalOptions, evaluate
    except ImportError as exc:
        return _fail(f"evaluation needs the eval extras: pip install -e '.[eval]' ({exc.name} missing)")
    from service.retriever import open_retriever

    model_dir = settings.resolved_model_path()
    if args.decide:
        from eval.decide import decide_markdown, run_decide

        result = run_decide(args.out, model_dir, args.out / "indexes")
        print(decide_markdown(result), end="")
        print(f"wrote {args.out / 'decide.md'} and {args.out / 'decide.json'}")
        return 0
    if args.claims:
        from eval.claims import claims_markdown, run_claims

        result = run_claims(args.out, model_dir, args.out / "indexes")
        print(claims_markdown(result), end="")
        print(f"wrote {args.out / 'claims.md'} and {args.out / 'claims.json'}")
        return 0
    if args.suite is not None:
        from eval.suite import BY_NAME, run_suite

        unknown = [name for name in args.suite if name not in BY_NAME]
        if unknown:
            return _fail(f"unknown corpus {', '.join(unknown)} (choose from {', '.join(BY_NAME)})")
        reports = run_suite(args.out, model_dir, args.suite or None)
        for name, report in reports.items():
            hybrid = report["systems"]["citeqa hybrid"]
            print(f"{name}: R@5 {hybrid['recall@5']:.3f}, MRR@10 {hybrid['mrr@10']:.3f}")
        print(f"wrote {args.out / 'suite.md'} and {args.out / 'suite.json'}")
        return 0
    retriever = open_retriever(args.index, model_dir, settings.model_sha256)
    if args.written:
        return _eval_written(args, settings, retriever)
    options = EvalOptions(
        index=args.index,
        corpus=args.corpus,
        questions=args.questions,
        out=args.out,
        model_dir=model_dir,
        baseline=not args.no_baseline,
        tune=args.tune,
        variants=args.variants,
    )
    report, paths = evaluate(options, retriever)
    hybrid = report["systems"]["citeqa hybrid"]
    print(
        f"hybrid: R@1 {hybrid['recall@1']:.3f}, R@5 {hybrid['recall@5']:.3f}, MRR@10 {hybrid['mrr@10']:.3f}; "
        f"wrote {', '.join(str(p) for p in paths)}"
    )
    if args.tune:
        tuning = report["tuning"]
        print(f"tuned: {tuning['chosen']} (cross-validated MRR@10 {tuning['cross_validated']['mrr@10']:.3f})")
    return 0


def _eval_written(args: argparse.Namespace, settings: Settings, retriever: Retriever) -> int:
    from service.llm.client import LLMConfig

    url = args.llm_url or settings.llm_url
    if not url:
        return _fail("--written needs an LLM: --llm-url URL or CITEQA_LLM_URL (e.g. http://127.0.0.1:8080/v1)")
    from eval.written import run_written

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    config = LLMConfig(
        url,
        args.llm_model or settings.llm_model,
        key,
        settings.llm_timeout_s,
        settings.llm_max_tokens,
        settings.llm_seed,
    )
    report = run_written(retriever, args.questions, args.out, config, settings.llm_passages, args.limit)
    summary = report["summary"]
    print(
        f"written: {summary['questions']} questions, {summary['fell_back']} fell back; sentences supported "
        f"{summary['sentences_supported']}, markers to the evidence {summary['markers_holding_evidence']}, "
        f"answers covering it {summary['answers_covering_evidence']}, unanswerable declined "
        f"{summary['unanswerable_declined']}; wrote {args.out / 'written.md'}"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], settings: Settings) -> None:
    """Adds `eval` and `bench` to the `citeqa` command's subcommands."""
    evaluation = sub.add_parser(
        "eval",
        help="evaluate every mode and the LangChain recipe on a question set",
        epilog="example: citeqa eval --index index --questions eval/questions.jsonl --out reports/eval --tune",
    )
    evaluation.add_argument("--index", type=Path, default=settings.index_dir)
    evaluation.add_argument("--corpus", type=Path, default=settings.corpus_dir)
    evaluation.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    evaluation.add_argument("--out", type=Path, default=Path("reports/eval"))
    evaluation.add_argument("--no-baseline", action="store_true", help="skip the LangChain recipe")
    evaluation.add_argument("--tune", action="store_true", help="grid-search fusion weights, calibrate 'no answer'")
    evaluation.add_argument("--variants", action="store_true", help="also measure chunking/context variants")
    evaluation.add_argument(
        "--suite",
        nargs="*",
        metavar="CORPUS",
        help="index and evaluate every evaluation corpus, or those named (see eval/suite.py: article, pip-docs, ...)",
    )
    evaluation.add_argument(
        "--decide",
        action="store_true",
        help="choose the 'no answer' and highlight settings leave-one-corpus-out over the suite (eval/decide.py)",
    )
    evaluation.add_argument(
        "--claims",
        action="store_true",
        help="choose the written answer's support threshold leave-one-corpus-out over the suite (eval/claims.py)",
    )
    evaluation.add_argument(
        "--written",
        action="store_true",
        help="evaluate written answers by an LLM (eval/written.py): markers, support, evidence covered, declines",
    )
    evaluation.add_argument("--llm-url", help="the OpenAI-compatible server for --written (default CITEQA_LLM_URL)")
    evaluation.add_argument("--llm-model", help="its model name (default CITEQA_LLM_MODEL)")
    evaluation.add_argument(
        "--limit", type=int, help="--written: only the first N answerable questions and N/4 unanswerable ones"
    )
    evaluation.set_defaults(run=cmd_eval)

    register_bench(sub, settings)
