"""`citeqa bench`, the one entry point of the benchmarks: serving, ingest, scale and the answer path at scale."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from service.cli import _fail
from service.settings import Settings


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    try:
        from eval.bench.report import write_bench
        from eval.bench.run import BenchOptions, run_bench
    except ImportError as exc:
        return _fail(f"the benchmark needs the eval extras: pip install -e '.[eval]' ({exc.name} missing)")
    from rich.console import Console

    from service.retriever import verify_serving

    model_dir = settings.resolved_model_path()
    console = Console(stderr=True)
    if args.ingest_corpus is not None:
        from eval.bench.ingest_cost import run_ingest_bench, write_ingest_bench

        if not args.ingest_corpus.is_dir():
            return _fail(f"corpus folder not found: {args.ingest_corpus}")
        report = run_ingest_bench(
            args.ingest_corpus,
            model_dir,
            lambda message: console.log(message),
            args.repeat,
            args.ingest_baseline,
            torch_too=not args.no_torch,
        )
        for name, value in report["ratios"].items():
            print(f"{name}: {value:.2f}")
        print(f"wrote {', '.join(str(p) for p in write_ingest_bench(args.out, report))}")
        return 0
    verify_serving(args.index, model_dir, settings.model_sha256)
    options = BenchOptions(
        index=args.index,
        corpus=args.corpus,
        out=args.out,
        model_dir=model_dir,
        seconds=args.seconds,
        cold=args.cold,
        scale_sizes=tuple(args.scale) if args.scale else (),
    )
    if args.scale_path:
        return _bench_scale_path(args, model_dir, lambda message: console.log(message))
    report = run_bench(options, lambda message: console.log(message))
    paths = write_bench(args.out, report)
    for name, value in report["ratios"].items():
        print(f"{name}: {value:.2f}")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _bench_scale_path(args: argparse.Namespace, model_dir: Path, say: Callable[[str], None]) -> int:
    """The whole answer path at synthetic corpus sizes beside the article, on its own: it
    builds million-passage indexes in memory and so takes far longer than the rest."""
    from eval.bench.scale_path import run_scale_path, scale_path_markdown

    report = run_scale_path(args.index, model_dir, tuple(args.scale_path), say)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale-path.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    table = scale_path_markdown(report)
    (args.out / "scale-path.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    print(f"wrote {args.out / 'scale-path.json'}, {args.out / 'scale-path.md'}")
    return 0


def register_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser], settings: Settings) -> None:
    """Adds `bench` to the `citeqa` command's subcommands."""
    bench = sub.add_parser(
        "bench",
        help="measure latency, throughput, start-up, ingest and scale against baselines",
        epilog="example: citeqa bench --index index --out reports/bench --scale 10000 100000 1000000\n"
        "         citeqa bench --ingest-corpus eval/corpora/pip-docs --out reports/bench-ingest",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument("--index", type=Path, default=settings.index_dir)
    bench.add_argument("--corpus", type=Path, default=settings.corpus_dir)
    bench.add_argument("--out", type=Path, default=Path("reports/bench"))
    bench.add_argument("--seconds", type=float, default=8.0, help="duration of each load run")
    bench.add_argument("--cold", action="store_true", help="also time `make run` in a fresh clone")
    bench.add_argument("--scale", type=int, nargs="*", help="synthetic corpus sizes for the scale measurements")
    bench.add_argument(
        "--scale-path",
        type=int,
        nargs="+",
        metavar="PASSAGES",
        help="only time the whole answer path on synthetic indexes of these sizes, beside the article",
    )
    bench.add_argument(
        "--ingest-corpus",
        type=Path,
        help="only measure ingest of this corpus: torch against ONNX, re-ingest after one change, LangChain",
    )
    bench.add_argument("--repeat", type=int, default=3, help="runs of each ingest measurement (median reported)")
    bench.add_argument(
        "--ingest-baseline", type=Path, help="a checkout of an earlier citeqa whose `citeqa ingest` is timed alongside"
    )
    bench.add_argument(
        "--no-torch",
        action="store_true",
        help="with --ingest-corpus: leave out PyTorch (its embedding and `ingest --no-onnx`), for corpora of a few MB",
    )
    bench.set_defaults(run=cmd_bench)
