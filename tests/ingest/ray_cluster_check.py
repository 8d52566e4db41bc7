"""Start a Ray cluster of N nodes on loopback, ingest through the real CLI on it, check the index.

Run inside a private network namespace (Ray binds to the machine's address otherwise):
    unshare -n bash -c 'ip link set lo up; python tests/ingest/ray_cluster_check.py CORPUS OUT --nodes 3'
Prints one JSON line: seconds, passages, manifest engine. With --compare, also ingests locally and
checks that the two indexes agree and that the Ray-built one serves an answer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def ingest(corpus: Path, index: Path, *engine_args: str) -> float:
    command = [sys.executable, "-m", "service.cli", "ingest", "--corpus", str(corpus), "--index", str(index)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    result = subprocess.run([*command, *engine_args], env=env, cwd=REPO, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"ingest failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="embedding actors (default: one per node)")
    parser.add_argument("--cpus-per-node", type=int, default=1, help="also each embedding actor's threads")
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = str(REPO)  # the nodes' workers import this checkout
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus_per_node})
    try:
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=args.cpus_per_node)
        cluster.wait_for_nodes()
        workers = str(args.workers or args.nodes)
        ray_index = args.out / "ray"
        address = cluster.address
        engine = ("--engine", "ray", "--ray-address", address, "--workers", workers)
        seconds = ingest(args.corpus, ray_index, *engine, "--cpus-per-worker", str(args.cpus_per_node))
    finally:
        cluster.shutdown()  # type: ignore[no-untyped-call]
    manifest = json.loads((ray_index / "manifest.json").read_text(encoding="utf-8"))
    report = {"address": address, "seconds": seconds, "chunks": manifest["counts"]["chunks"]}
    report |= {"sentences": manifest["counts"]["sentences"], "engine": manifest["engine"]}
    if args.compare:
        from ingest.embedding import MODEL_SHA256, default_model_path
        from service.retriever import open_retriever
        from tests.ingest.ray_support import assert_same_index

        report["local_seconds"] = ingest(args.corpus, args.out / "local")
        assert_same_index(ray_index, args.out / "local")
        answer = open_retriever(ray_index, default_model_path(), MODEL_SHA256).answer("Who is behind the attack?", 3)
        report["answer"] = {"answerable": answer.answerable, "top": answer.hits[0].chunk.chunk_id}
        assert answer.hits, "the Ray-built index answered nothing"
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
