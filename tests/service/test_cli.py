"""The `citeqa` command as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_citeqa

pytestmark = pytest.mark.integration


def test_ask_json(real_index: Path) -> None:
    result = run_citeqa("ask", "Which band was about to play?", "--index", str(real_index), "--k", "2", "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert len(body["passages"]) == 2
    assert "Picnic" in " ".join(p["text"] for p in body["passages"])


def test_ask_text_output(real_index: Path) -> None:
    result = run_citeqa("ask", "Who is David Sharp?", "--index", str(real_index), "--k", "1")
    assert result.returncode == 0, result.stderr
    assert "[1] score" in result.stdout and "David Sharp" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "anything", "--index", "/nonexistent/index"], "index directory not found"),
        (["ask", "   ", "--index", "index"], "1–1000 characters"),
        (["ingest", "--corpus", "/nonexistent/corpus", "--index", "/tmp/citeqa-never"], "corpus folder not found"),
    ],
)
def test_errors_are_one_line(args: list[str], message: str) -> None:
    result = run_citeqa(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_ingest_if_stale_skips_a_current_index(real_index: Path) -> None:
    result = run_citeqa("ingest", "--corpus", "corpus", "--index", str(real_index), "--if-stale")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_help_has_examples() -> None:
    for command in ("ingest", "serve", "ask"):
        result = run_citeqa(command, "--help")
        assert result.returncode == 0 and "example:" in result.stdout
