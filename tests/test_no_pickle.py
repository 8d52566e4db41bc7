"""Nothing is ever unpickled: not in the source, not in an index directory or its embedding cache."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ingest.embedding_cache import cache_dir
from ingest.pipeline import build_index
from tests.conftest import CORPUS, REPO, FakeEmbedder

FORBIDDEN = re.compile(
    r"import pickle|from pickle|cPickle|pickle\.loads?\(|dill\.|joblib\.load|torch\.load\(|"
    r"allow_pickle\s*=\s*True|allow_dangerous_deserialization|load_local\("
)


# The one exception: the Ray driver process (ingest/ray_driver.py) reads its configuration, a loader
# callable among it, from the socket pair it inherits from its own parent, the citeqa process that
# started it (their other messages are pickled by multiprocessing's Connection too): the trust of
# that process itself, as between Ray's driver and its workers, which pickle every task. No file, no
# network endpoint, nothing of an index or cache is unpickled.
ALLOWED = {("ingest/ray_driver.py", "config: DriverConfig = cloudpickle.loads(conn.recv_bytes())")}


def test_source_tree_never_unpickles() -> None:
    offenders = []
    for folder in ("ingest", "service", "eval"):
        for path in (REPO / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if (path.relative_to(REPO).as_posix(), line.strip()) in ALLOWED:
                    continue
                if FORBIDDEN.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_index_artifacts_hold_no_pickles(tmp_path: Path) -> None:
    target = tmp_path / "index"
    build_index(CORPUS, target, FakeEmbedder())
    assert cache_dir(target).is_dir()
    for path in [*target.rglob("*"), *cache_dir(target).rglob("*")]:
        if not path.is_file():
            continue
        head = path.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in b"\x02\x03\x04\x05"), f"{path} looks pickled"
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises if the array needs pickle
