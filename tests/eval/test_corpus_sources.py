"""The evaluation corpora are the published files, unedited: every file is listed with its sha256."""

from __future__ import annotations

import hashlib

from tests.conftest import REPO

CORPORA = REPO / "eval" / "corpora"


def test_every_corpus_file_matches_its_recorded_sha256() -> None:
    recorded = {}
    for line in (CORPORA / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name.removeprefix("./")] = digest
    present = {
        p.relative_to(CORPORA).as_posix()
        for p in CORPORA.rglob("*")
        if p.is_file() and p.name not in ("SHA256SUMS", "SOURCES.md")
    }
    assert present == set(recorded)
    for name, digest in recorded.items():
        assert hashlib.sha256((CORPORA / name).read_bytes()).hexdigest() == digest, name
