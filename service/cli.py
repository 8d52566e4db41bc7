"""The `citeqa` command: ingest, serve, ask."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ingest.errors import CiteqaError
from service.settings import Settings, get_settings

EXIT_USAGE = 2

Command = Callable[[argparse.Namespace, Settings], int]


def _fail(message: str) -> int:
    print(f"citeqa: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.chunking import ChunkerSettings
    from ingest.documents import load_corpus
    from ingest.embedding import verify_model
    from ingest.pipeline import IngestSettings, build_index, index_is_current

    ingest_settings = IngestSettings(ChunkerSettings(args.max_chars, args.overlap))
    load_corpus(args.corpus)  # a bad corpus is reported before the model loads
    model_dir = settings.resolved_model_path()
    model_sha = verify_model(model_dir, settings.model_sha256)
    if args.if_stale and index_is_current(args.index, args.corpus, ingest_settings, model_sha):
        print(f"index {args.index} is up to date with {args.corpus}; nothing to do")
        return 0
    from ingest.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(model_dir, settings.model_sha256)
    summary = build_index(args.corpus, args.index, embedder, ingest_settings)
    print(
        f"indexed {summary.documents} document(s): {summary.blocks} blocks, {summary.chunks} chunks, "
        f"{summary.duplicates_skipped} duplicate blocks skipped, in {summary.seconds:.1f}s → {args.index}"
    )
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service.app import create_app
    from service.retriever import verify_serving

    settings = settings.model_copy(update={"index_dir": args.index})
    # Refuse before binding the port: a bad index or model never serves a single answer.
    verify_serving(args.index, settings.resolved_model_path(), settings.model_sha256)
    failures: list[str] = []
    server: uvicorn.Server | None = None

    def stop(message: str) -> None:
        failures.append(message)
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_load_failure=stop)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=settings.log_level, access_log=False)
    server = uvicorn.Server(config)
    server.run()
    if failures:
        return _fail(failures[0])
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from service.app import passage_dict
    from service.retriever import open_retriever

    question = args.question.strip()
    if not question or len(question) > 1000:
        return _fail("the question must be 1–1000 characters")
    retriever = open_retriever(args.index, settings.resolved_model_path(), settings.model_sha256)
    hits = retriever.search(question, args.k, args.mode)
    if args.json:
        print(
            json.dumps(
                {"question": question, "mode": args.mode, "passages": [passage_dict(h) for h in hits]},
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    for hit in hits:
        chunk = hit.chunk
        who = f" — {chunk.speaker}" if chunk.speaker else ""
        print(f"[{hit.rank}] score {hit.score:.3f}{who}")
        print(chunk.text)
        where = f"{chunk.doc_id}[{chunk.start}:{chunk.end}]"
        print(f"    {hit.document.title} › {chunk.section or '(no section)'} · {where}\n")
    return 0


def _k(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 50:
        raise argparse.ArgumentTypeError("k must be between 1 and 50")
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
    ingest.add_argument("--overlap", type=int, default=200, help="overlap between passages, in characters")
    ingest.set_defaults(run=cmd_ingest)

    serve = sub.add_parser(
        "serve", help="serve the HTTP API", epilog="example: citeqa serve --index index --host 127.0.0.1 --port 8000"
    )
    serve.add_argument("--index", type=Path, default=settings.index_dir)
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.set_defaults(run=cmd_serve)

    ask = sub.add_parser(
        "ask", help="answer one question from the index", epilog='example: citeqa ask "Who is behind the attack?" --k 3'
    )
    ask.add_argument("question")
    ask.add_argument("--index", type=Path, default=settings.index_dir)
    ask.add_argument("--k", type=_k, default=settings.default_k)
    ask.add_argument("--mode", default="dense")
    ask.add_argument("--json", action="store_true", help="print JSON for scripts")
    ask.set_defaults(run=cmd_ask)
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
        return 130


if __name__ == "__main__":
    sys.exit(main())
