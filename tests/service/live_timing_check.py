"""Time from a one-document PUT to that document being answerable, against a full ingest.

    .venv/bin/python -m tests.service.live_timing_check [corpus names under eval/corpora ...]

Copies the named evaluation corpora (default: pip-docs and mkdocs-html) into a temporary corpus,
times `citeqa ingest` of it with an empty embedding cache, serves it with writes on, then times
`PUT /documents/{id}?wait=600` of one new Markdown document (which answers once the worker serves
the generation holding it) and checks that /ask then cites it. Prints both times and their ratio.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.conftest import REPO, run_citeqa
from tests.service.live_support import live_server

NEW_DOCUMENT = (
    "# Lighthouse keeping\n\n## The Quellport light\n\n"
    "The Quellport lighthouse was rebuilt in 1911 after a storm, and its lamp burns paraffin.\n"
)


def main(names: list[str]) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        corpus, index = Path(scratch) / "corpus", Path(scratch) / "index"
        for name in names:
            shutil.copytree(REPO / "eval" / "corpora" / name, corpus / name, ignore=shutil.ignore_patterns("*.json*"))
        size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
        started = time.perf_counter()
        done = run_citeqa("ingest", "--corpus", str(corpus), "--index", str(index), timeout=3600)
        full = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        with live_server(corpus, index, timeout=300) as server:
            started = time.perf_counter()
            put = httpx.put(
                f"{server.url}/documents/lighthouse",
                params={"filename": "lighthouse.md", "wait": 600},
                content=NEW_DOCUMENT.encode(),
                timeout=700,
            )
            answerable = time.perf_counter() - started
            answer = httpx.post(f"{server.url}/ask", json={"question": "When was the Quellport lighthouse rebuilt?"})
            cited = [p["citation"]["doc_id"] for p in answer.json()["passages"]]
            status = httpx.get(f"{server.url}/index").json()
        print(f"corpus: {', '.join(names)}: {size / 1e6:.2f} MB in {corpus}")
        print(f"full ingest (citeqa ingest, empty cache): {full:.1f}s")
        print(f"PUT one document -> answerable: {answerable:.2f}s ({put.json()['status']}); top citation {cited[:1]}")
        print(f"writer's last build: {status['writer'].get('last_build')}")
        print(f"ratio: {answerable / full:.1%}")
        return 0 if put.status_code == 200 and cited and cited[0] == "lighthouse" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["pip-docs", "mkdocs-html"]))
