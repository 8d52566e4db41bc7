"""What the Ray tests share: a small corpus, and the comparison of two indexes built by two engines."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ingest.index_store import load_index

NOTES_MD = "# Tide tables\n\n## Spring tides\n\nSpring tides follow the new and the full moon, twice a month.\n"
LOG_TXT = "Harbour log\n\nThe pilot boat left at dawn. The fog lifted by noon and the ferry ran on time.\n"


def small_corpus(folder: Path) -> Path:
    """The article plus a tiny Markdown file and a tiny text file."""
    from tests.conftest import CORPUS

    shutil.copytree(CORPUS, folder)
    (folder / "tides.md").write_text(NOTES_MD, encoding="utf-8")
    (folder / "log.txt").write_text(LOG_TXT, encoding="utf-8")
    return folder


def _vectors(index: object) -> np.ndarray:
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)  # type: ignore[attr-defined]


def assert_same_index(built: Path, reference: Path, min_cosine: float = 0.999) -> None:
    """Same chunks (ids, texts, offsets) and sentences, and vectors that agree row for row."""
    a, b = load_index(built), load_index(reference)  # both verify every checksum
    assert [(c.chunk_id, c.doc_id, c.text, c.start, c.end) for c in a.chunks] == [
        (c.chunk_id, c.doc_id, c.text, c.start, c.end) for c in b.chunks
    ]
    assert a.sentences == b.sentences
    for mine, theirs in ((a.dense, b.dense), (a.sentence_dense, b.sentence_dense)):
        cosines = np.sum(_vectors(mine) * _vectors(theirs), axis=1)  # both L2-normalised
        assert cosines.min() >= min_cosine, f"lowest cosine {cosines.min():.5f}"
