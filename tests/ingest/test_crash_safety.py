"""Killing an ingest (SIGKILL) at any point never leaves a broken index: the old one answers."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.index_store import load_index
from ingest.pipeline import build_index
from tests.conftest import CORPUS, REPO, FakeEmbedder, citeqa_env

# Each point names a function the ingest calls and whether the kill comes before or after it.
KILL_POINTS = {
    "while parsing": ("ingest.stages", "chunk_document_with_sentences", "before"),
    "while embedding": ("ingest.engines", "embed_in_slices", "before"),
    "after the FAISS file": ("faiss", "write_index", "after"),
    "after the lexical index": ("ingest.lexical", "LexicalIndex.save", "after"),
    "before fsync": ("ingest.index_store", "_fsync_tree", "before"),
    "inside the swap": ("ingest.index_store", "shutil.rmtree", "before"),
}

SCRIPT = """
import importlib, os, signal, sys
from pathlib import Path
module_name, attribute, when, corpus, target = sys.argv[1:]
module = importlib.import_module(module_name)
owner_path, _, name = attribute.rpartition(".")
owner = module
for part in filter(None, owner_path.split(".")):
    owner = getattr(owner, part)
original = getattr(owner, name)
def killer(*args, **kwargs):
    if when == "after":
        original(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(owner, name, killer)
from ingest.pipeline import build_index
from tests.conftest import FakeEmbedder
build_index(Path(corpus), Path(target), FakeEmbedder(dimension=32))
"""


@pytest.fixture(scope="module")
def original_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("original") / "index"
    build_index(CORPUS, target, FakeEmbedder(dimension=64))
    return target


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_each_stage_keeps_a_whole_index(point: str, original_index: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    shutil.copytree(original_index, target)
    module, attribute, when = KILL_POINTS[point]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, module, attribute, when, str(CORPUS), str(target)],
        env=citeqa_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    survivor = load_index(target)  # verifies every checksum
    # Before the swap the old index is in place; at the swap, the new one is, complete.
    assert survivor.dense.d == (32 if point == "inside the swap" else 64)
    # The next ingest cleans up what the killed one left and succeeds.
    build_index(CORPUS, target, FakeEmbedder(dimension=48))
    assert load_index(target).dense.d == 48
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".index.tmp")]


@pytest.mark.integration
def test_sigkill_of_the_real_cli_at_several_moments(real_index: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    shutil.copytree(real_index, target)
    before = (target / "manifest.json").read_bytes()
    for delay in (0.5, 3.0, 6.0):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.cli",
                "ingest",
                "--corpus",
                str(CORPUS),
                "--index",
                str(target),
                "--max-chars",
                "700",
            ],
            env=citeqa_env(),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        process.kill()
        process.wait()
        index = load_index(target)
        if (target / "manifest.json").read_bytes() != before:  # it finished before the kill: the new one, whole
            assert index.manifest["ingest"]["chunker"]["max_chars"] == 700
            return
        assert index.manifest["ingest"]["chunker"]["max_chars"] == 1000


def test_second_ingest_process_is_refused(original_index: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    shutil.copytree(original_index, target)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from ingest.index_store import ingest_lock\n"
            "with ingest_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(30)",
            str(target),
        ],
        env=citeqa_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = subprocess.run(
            [sys.executable, "-m", "service.cli", "ingest", "--corpus", str(CORPUS), "--index", str(target)],
            env=citeqa_env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"citeqa: error: another ingest is writing {target} (lock {target.parent / '.index.lock'})"
        ]
    finally:
        holder.kill()
        holder.wait()
