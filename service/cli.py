"""The `citeqa` command: ingest, serve, ask, and the commands other packages register (eval, bench)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import CiteqaError
from service.retriever import DEFAULT_MODE, MODES
from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from rich.progress import TaskID

    from service.retriever import Answer

EXIT_USAGE = 2
ENGINE_NAMES = ("local", "ray")  # ingest.engines.ENGINES, named here so `--help` imports no numpy

Command = Callable[[argparse.Namespace, Settings], int]
# Packages above the service add their subcommands through entry points of this group: a
# function (subparsers, settings) -> None (eval's `eval` and `bench`, eval/commands.py).
COMMANDS_GROUP = "citeqa.commands"
Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]", Settings], None]


def _fail(message: str) -> int:
    print(f"citeqa: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.chunking import ChunkerSettings
    from ingest.documents import read_corpus
    from ingest.embedding import verify_model
    from ingest.embedding_cache import cache_dir
    from ingest.index_store import ingest_lock
    from ingest.pipeline import IngestSettings, build_index, index_is_current

    ingest_settings = IngestSettings(ChunkerSettings(args.max_chars, args.overlap), onnx_encoder=not args.no_onnx)
    corpus = read_corpus(args.corpus)  # a bad corpus, or a running ingest, is reported before the model loads
    for entry in corpus.skipped:
        print(f"citeqa: skipped {entry['source']}: {entry['reason']}", file=sys.stderr)
    with ingest_lock(args.index):
        pass
    model_dir = settings.resolved_model_path()
    model_sha = verify_model(model_dir, settings.model_sha256)
    if args.if_stale and index_is_current(args.index, args.corpus, ingest_settings, model_sha):
        print(f"index {args.index} is up to date with {args.corpus}; nothing to do")
        return 0
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    from ingest.embedding import Embedder, SentenceTransformerEmbedder
    from ingest.onnx_documents import OnnxDocumentEmbedder
    from ingest.pipeline import IngestSummary, Progress
    from ingest.progress import LogProgress

    console = Console(stderr=True)
    embedder: Embedder
    export = None
    if args.no_onnx:
        with console.status("loading the embedding model…"):
            embedder = SentenceTransformerEmbedder(model_dir, settings.model_sha256)
    else:  # documents are embedded with the ONNX export that serves queries, once exported
        onnx = embedder = OnnxDocumentEmbedder(model_dir, settings.model_sha256)

        def export(folder: Path) -> dict[str, object]:
            config = onnx.export(folder, reuse_from=args.index)
            if onnx.reused_from is not None:
                print(f"citeqa: reusing the ONNX encoder of {args.index} (same weights and exporter)", file=sys.stderr)
            return config

    from ingest.engines import make_engine

    options = {}
    if args.engine == "ray":
        from ingest.ray_engine import document_embedder_loader

        # Each Ray worker loads (and verifies) the same embedder as this process, on its own node.
        loader = document_embedder_loader(model_dir, settings.model_sha256, args.cpus_per_worker, args.gpus_per_worker)
        options = {
            "load_embedder": loader,
            "address": args.ray_address,
            "workers": args.workers,
            "gpus_per_worker": args.gpus_per_worker,
            "cpus_per_worker": args.cpus_per_worker,
            "connect_timeout": args.ray_connect_timeout,
            # Ray's own output goes beside the index (named in any error), or to stderr with --verbose.
            "log_file": args.index.with_name(f".{args.index.name}.ray.log"),
            "verbose": args.verbose,
        }
    engine = make_engine(args.engine, embedder, **options)

    def build(progress: Progress) -> IngestSummary:
        try:
            return build_index(
                args.corpus, args.index, embedder, ingest_settings, progress, export_encoder=export, engine=engine
            )
        finally:
            engine.close()

    if not console.is_terminal:
        summary = build(LogProgress())
    else:
        columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with RichProgress(*columns, console=console) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            summary = build(progress)
    print(
        f"indexed {summary.documents} document(s): {summary.blocks} blocks, {summary.chunks} chunks, "
        f"{summary.duplicates_skipped} duplicate blocks skipped, {summary.texts_embedded} texts embedded and "
        f"{summary.texts_cached} reused from {cache_dir(args.index)}, in {summary.seconds:.1f}s → {args.index}"
    )
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.app import create_app
    from service.observability import configure_logging
    from service.retriever import verify_serving

    settings = settings.model_copy(
        update={"index_dir": args.index, "corpus_dir": args.corpus, "watch": args.watch or settings.watch}
    )
    # Refuse before binding the port: a bad index or model never serves a single answer.
    verify_serving(args.index, settings.serving_model_path(), settings.model_sha256)
    configure_logging(settings.log_level)
    if args.workers > 1:
        return _serve_workers(args, settings)
    failures: list[str] = []
    server: uvicorn.Server | None = None

    def stop(message: str) -> None:
        failures.append(message)
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_load_failure=stop)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        access_log=False,  # citeqa writes its own structured line per request
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    server.run()
    if failures:
        return _fail(failures[0])
    return 0


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """Several server processes, one per core, each loading the index (memory-mapped, so its
    vectors and BM25 arrays are shared) through the app factory, with settings from the
    environment. The index was verified once above; workers check only that its manifest is
    the one verified."""
    import uvicorn

    from ingest.index_store import MANIFEST, file_sha256

    os.environ["CITEQA_INDEX_DIR"] = str(args.index.resolve())
    os.environ["CITEQA_CORPUS_DIR"] = str(settings.corpus_dir.resolve())
    os.environ["CITEQA_WATCH"] = "true" if settings.watch else "false"
    os.environ["CITEQA_VERIFIED_MANIFEST_SHA256"] = file_sha256(args.index / MANIFEST)
    if settings.model_path is not None:
        os.environ["CITEQA_MODEL_PATH"] = str(settings.model_path.resolve())
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
    return 0


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    """An MCP server on stdin/stdout for a client that starts it (service/mcp_server.py). The
    index is checked and loaded before the first message, so a bad one is a one-line error."""
    import contextlib

    from ingest.index_store import MANIFEST, file_sha256
    from service.observability import configure_logging

    settings = settings.model_copy(update={"index_dir": args.index})
    configure_logging(settings.log_level)  # to stderr: stdout carries the protocol
    with contextlib.redirect_stdout(sys.stderr):  # whatever loading prints must not reach the client
        from service.app import load_from_settings
        from service.mcp_server import run_stdio
        from service.retriever import verify_serving

        verify_serving(args.index, settings.serving_model_path(), settings.model_sha256)
        settings = settings.model_copy(update={"verified_manifest_sha256": file_sha256(args.index / MANIFEST)})
        try:
            retriever = load_from_settings(settings)
        except CiteqaError:
            raise
        except Exception as exc:  # an unreadable artifact: the same one line as any bad index
            return _fail(f"cannot load the index {args.index}: {type(exc).__name__}: {exc}")
    run_stdio(settings, retriever)
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from service.asking import passage_dict
    from service.retriever import Filters, open_retriever

    question = args.question.strip()
    if not question or len(question) > 1000:
        return _fail("the question must be 1–1000 characters")
    filters = None
    if args.doc or args.section is not None or args.speaker is not None:
        filters = Filters(frozenset(args.doc) if args.doc else None, args.section, args.speaker)
    retriever = open_retriever(args.index, settings.serving_model_path(), settings.model_sha256)
    answer = retriever.answer(question, args.k, args.mode, filters=filters)
    if args.json:
        body = {
            "question": question,
            "mode": args.mode,
            "answerable": answer.answerable,
            "no_answer_reason": answer.reason,
            "passages": [passage_dict(h) for h in answer.hits],
        }
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    print_answer(question, answer)
    return 0


def print_answer(question: str, answer: Answer) -> None:
    """Passages with the answer sentence highlighted and the citation under each."""
    from rich.console import Console
    from rich.markup import escape
    from rich.text import Text

    console = Console(highlight=False)
    if not answer.answerable:
        console.print(f"[bold red]No answer in the corpus[/]: {escape(answer.reason or '')} (closest passages below)\n")
    for hit in answer.hits:
        chunk = hit.chunk
        who = f" — {chunk.speaker}" if chunk.speaker else ""
        console.print(Text(f"[{hit.rank}] score {hit.score:.3f}{who}", style="bold"))
        body = Text(chunk.text)
        if hit.answer is not None and hit.highlighted:
            body.stylize("bold yellow", hit.answer.start - chunk.start, hit.answer.end - chunk.start)
        console.print(body)
        where = f"{chunk.doc_id}[{chunk.start}:{chunk.end}]"
        pages = hit.document.page_span(chunk.start, chunk.end)
        if pages:
            where += f" · page {pages[0]}" if pages[0] == pages[1] else f" · pages {pages[0]}–{pages[1]}"
        section = chunk.section or "(no section)"
        console.print(Text(f"    {hit.document.title} › {section} · {where}\n", style="dim"))


def _workers(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("workers must be at least 1")
    return number


def _k(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 50:
        raise argparse.ArgumentTypeError("k must be between 1 and 50")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _command_registrars() -> list[Registrar]:
    """The registered subcommands of other packages, in the order of their entry points' names."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=COMMANDS_GROUP), key=lambda point: point.name)
    return [point.load() for point in found]


def _seconds(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return number


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citeqa", description="Question answering with exact citations.")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser(
        "ingest",
        help="build the index directory from a corpus folder",
        epilog="example: citeqa ingest --corpus corpus --index index --if-stale",
    )
    ingest.add_argument("--corpus", type=Path, default=settings.corpus_dir)
    ingest.add_argument("--index", type=Path, default=settings.index_dir)
    ingest.add_argument("--if-stale", action="store_true", help="do nothing when the index is current")
    ingest.add_argument("--max-chars", type=int, default=1000, help="largest passage, in characters")
    ingest.add_argument("--overlap", type=int, default=0, help="overlap between passages, in characters")
    ingest.add_argument(
        "--no-onnx", action="store_true", help="embed documents and serve queries with PyTorch, not ONNX Runtime"
    )
    ingest.add_argument(
        "--engine", default="local", choices=ENGINE_NAMES, help="where parsing and embedding run (default: local)"
    )
    ingest.add_argument("--ray-address", help="a running Ray cluster (HEAD:6379); default: start Ray on this machine")
    ingest.add_argument("--workers", type=_positive, default=1, help="Ray: embedding actors (one model each)")
    ingest.add_argument("--gpus-per-worker", type=float, default=0, help="Ray: GPUs per embedding actor")
    ingest.add_argument("--cpus-per-worker", type=_positive, default=1, help="Ray: CPUs (threads) per embedding actor")
    ingest.add_argument(
        "--ray-connect-timeout",
        type=_seconds,
        default=30.0,
        help="Ray: seconds to reach the cluster, and the longest its head may stay silent (default 30)",
    )
    ingest.add_argument(
        "--verbose", action="store_true", help="Ray: its own logs on stderr (default: a log file beside the index)"
    )
    ingest.set_defaults(run=cmd_ingest)

    serve = sub.add_parser(
        "serve", help="serve the HTTP API", epilog="example: citeqa serve --index index --host 127.0.0.1 --port 8000"
    )
    serve.add_argument("--index", type=Path, default=settings.index_dir)
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument(
        "--workers", type=_workers, default=settings.workers, help="server processes (default 1; CITEQA_WORKERS)"
    )
    serve.add_argument("--corpus", type=Path, default=settings.corpus_dir, help="where document writes land")
    serve.add_argument("--watch", action="store_true", help="index files dropped into the corpus folder")
    serve.set_defaults(run=cmd_serve)

    ask = sub.add_parser(
        "ask",
        help="answer one question from the index",
        epilog='example: citeqa ask "Who is behind the attack?" --k 3 --speaker "David Sharp"',
    )
    ask.add_argument("question")
    ask.add_argument("--index", type=Path, default=settings.index_dir)
    ask.add_argument("--k", type=_k, default=settings.default_k)
    ask.add_argument("--mode", default=DEFAULT_MODE, choices=MODES)
    ask.add_argument("--json", action="store_true", help="print JSON for scripts")
    ask.add_argument("--doc", action="append", metavar="DOC_ID", help="only this document (repeat for several)")
    ask.add_argument("--section", help="only passages whose section path starts with this (any case)")
    ask.add_argument("--speaker", help="only passages spoken by this person (exact name, any case)")
    ask.set_defaults(run=cmd_ask)

    mcp = sub.add_parser(
        "mcp",
        help="serve the index to an MCP client over stdin/stdout",
        description="An MCP server on stdio for a client that starts it (Claude Desktop, an IDE, an agent): "
        "tools search, get_passage, list_documents, and ask when CITEQA_LLM_URL is set. Logs go to stderr. "
        "The HTTP server serves the same tools at /mcp.",
        epilog="example: citeqa mcp --index index",
    )
    mcp.add_argument("--index", type=Path, default=settings.index_dir)
    mcp.set_defaults(run=cmd_mcp)
    for register in _command_registrars():
        register(sub, settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        settings = get_settings()
    except ValueError as exc:
        return _fail(f"bad setting in the environment: {exc}".splitlines()[0])
    args = build_parser(settings).parse_args(argv)
    run: Command = args.run
    try:
        return run(args, settings)
    except CiteqaError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("citeqa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
