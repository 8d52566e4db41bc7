"""A 3-node Ray cluster on loopback ingests through the real CLI; the index equals a local one and serves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.ingest.ray_support import small_corpus

pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra")
SCRIPT = REPO / "tests" / "ingest" / "ray_cluster_check.py"
TIMEOUT_S = 420  # measured about 50 s here: three nodes, two ingests of the article with the real model


def _namespace_reason() -> str | None:
    """Why a private network namespace cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root for `unshare -n` (a private network namespace keeps Ray on loopback)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs `unshare` and `ip` (util-linux, iproute2) for a private network namespace"
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"`unshare -n` is not allowed here: {probe.stderr.decode(errors='replace').strip()}"
    return None


@pytest.mark.integration
def test_three_node_cluster_ingests_like_the_local_engine(tmp_path: Path) -> None:
    reason = _namespace_reason()
    if reason:
        pytest.skip(reason)
    corpus = small_corpus(tmp_path / "corpus")
    # The namespace wraps the whole cluster, the CLI ingests and the comparison: the script does all of it.
    inner = f"ip link set lo up && exec {sys.executable} {SCRIPT} {corpus} {tmp_path / 'out'} --nodes 3 --compare"
    result = subprocess.run(
        ["unshare", "-n", "bash", "-c", inner], capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["address"].startswith("127.0.0.1:")
    started = {k: v for k, v in report["engine"].items() if k != "during"}
    assert started == {"name": "ray", "nodes": 3, "cpus": 3, "gpus": 0, "workers": 3, "gpus_per_worker": 0}
    assert report["engine"]["during"]["nodes_lost"] == 0
    assert report["engine"]["during"]["embed_actors_started"] == 3
    assert report["answer"]["answerable"]
    manifest = json.loads((tmp_path / "out" / "ray" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["engine"]["nodes"] == 3
