"""The `citeqa` command as a user runs it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ingest.chunking import Chunk
from ingest.documents import Document
from service.cli import print_answer
from service.retriever import Answer, Hit
from tests.conftest import CORPUS, run_citeqa

pytestmark = pytest.mark.integration
ARTICLE = "insider-2024-isis-k-crocus"


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


def encoder_artifacts(index: Path) -> dict[str, object]:
    artifacts = json.loads((index / "manifest.json").read_text(encoding="utf-8"))["artifacts"]
    return {name: entry for name, entry in artifacts.items() if name.startswith("encoder/")}


def test_reingest_embeds_what_changed_and_reuses_the_encoder(tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(CORPUS, corpus)
    (corpus / "second.txt").write_text("A second article.\n\nIt has one paragraph.\n", encoding="utf-8")
    ingest = ("ingest", "--corpus", str(corpus), "--index", str(index))
    first = run_citeqa(*ingest, timeout=600)
    assert first.returncode == 0, first.stderr
    assert re.search(r"\d+ texts embedded and 0 reused", first.stdout) and "reusing" not in first.stderr
    assert "Warning" not in first.stderr, first.stderr  # the ONNX export traces the model quietly
    # and the quantiser's logging set-up is undone: no library's debug or info lines after it
    assert not re.search(r"^(DEBUG|INFO|WARNING):", first.stderr, re.MULTILINE), first.stderr
    encoder = encoder_artifacts(index)

    (corpus / "second.txt").write_text("A second article.\n\nIts paragraph was rewritten.\n", encoding="utf-8")
    second = run_citeqa(*ingest, timeout=600)
    assert second.returncode == 0, second.stderr
    embedded = re.search(r"(\d+) texts embedded and (\d+) reused", second.stdout)
    assert embedded and 0 < int(embedded[1]) <= 3 and int(embedded[2]) > 150, second.stdout
    assert "reusing the ONNX encoder" in second.stderr
    assert encoder_artifacts(index) == encoder  # the same files as that fresh export

    third = run_citeqa(*ingest, "--if-stale")
    assert third.returncode == 0 and "up to date" in third.stdout


def test_help_has_examples() -> None:
    for command in ("ingest", "serve", "ask", "mcp"):
        result = run_citeqa(command, "--help")
        assert result.returncode == 0 and "example:" in result.stdout


def test_ask_filters(real_index: Path) -> None:
    question, index = "Who is behind the attack?", str(real_index)
    result = run_citeqa("ask", question, "--index", index, "--k", "10", "--speaker", "david sharp", "--json")
    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout)["passages"]
    assert passages and {p["citation"]["speaker"] for p in passages} == {"David Sharp"}
    result = run_citeqa(
        "ask", question, "--index", index, "--k", "10", "--section", "long-anticipated", "--doc", ARTICLE, "--json"
    )
    assert result.returncode == 0, result.stderr
    passages = json.loads(result.stdout)["passages"]
    assert passages and all(p["citation"]["section"] == "Long-anticipated terrorist attack" for p in passages)
    assert {p["citation"]["doc_id"] for p in passages} == {ARTICLE}


def test_ask_unknown_document_is_one_line(real_index: Path) -> None:
    result = run_citeqa("ask", "anything", "--index", str(real_index), "--doc", ARTICLE, "--doc", "no-such-doc")
    assert result.returncode == 2
    assert result.stderr.strip() == "citeqa: error: unknown document id: no-such-doc"


def test_text_output_names_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    text = "Page one.\n\nPage two, where the answer is.\n\nPage three."
    pages = (0, text.index("Page two"), text.index("Page three"))
    document = Document("paged", "Paged", "paged.pdf", text, format="pdf", pages=pages)
    chunk = Chunk("paged:x", "paged", "Page two, where the answer is.", pages[1], pages[2] - 2, None, None, "narrative")
    print_answer("where?", Answer([Hit(1, 0.5, chunk, document)], True, 1.0))
    assert f"paged[{pages[1]}:{pages[2] - 2}] · page 2" in capsys.readouterr().out
