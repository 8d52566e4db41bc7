"""Live corpus across processes: two workers follow a new generation, and kill -9 loses nothing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from ingest.documents import load_corpus
from ingest.updates import CRASH_ENV
from tests.service.live_support import live_copy, live_server, wait_idle
from tests.service.test_live_corpus import note

LAG_BOUND_S = 2.0  # CITEQA_LIVE_POLL_S (0.5 s) plus one load of this small index, with room for busy cores


def test_both_workers_serve_the_new_generation_within_the_bound(real_index: Path, tmp_path: Path) -> None:
    corpus, index = live_copy(real_index, tmp_path)
    with live_server(corpus, index, "--workers", "2", timeout=120) as server:
        # Both workers up: each /index answer names its pid (new connection each time).
        pids: dict[int, dict[str, object]] = {}
        deadline = time.monotonic() + 60
        while len(pids) < 2:
            assert time.monotonic() < deadline, f"saw only workers {list(pids)}"
            status = httpx.get(f"{server.url}/index", headers={"connection": "close"}).json()
            pids[int(status["pid"])] = status
        put = httpx.put(
            f"{server.url}/documents/two", params={"filename": "two.md", "wait": 60}, content=note(2, 0, "w").encode()
        )
        assert put.status_code == 200, put.text
        generation = put.json()["generation"]
        caught_up: dict[int, dict[str, object]] = {}
        deadline = time.monotonic() + 30
        while len(caught_up) < 2:
            assert time.monotonic() < deadline, f"workers at {caught_up}"
            status = httpx.get(f"{server.url}/index", headers={"connection": "close"}).json()
            if status["generation"] >= generation:
                caught_up[int(status["pid"])] = status
        lags = [float(s["served_since"]) - float(s["swapped_at"]) for s in caught_up.values()]  # type: ignore[arg-type]
        print(f"\nworker lag after the swap: {', '.join(f'{lag:.3f}s' for lag in lags)} (bound {LAG_BOUND_S}s)")
        assert set(caught_up) == set(pids)
        assert max(lags) <= LAG_BOUND_S


@pytest.mark.parametrize("point", ["journaled", "corpus", "building", "swapped"])
def test_kill_9_during_an_update_loses_nothing(real_index: Path, tmp_path: Path, point: str) -> None:
    """The server kills itself (SIGKILL) at `point`; a restart serves an index that matches the corpus."""
    corpus, index = live_copy(real_index, tmp_path)
    acknowledged: dict[str, str] = {}
    deleted: set[str] = set()
    with live_server(corpus, index) as server:
        kept = note(7, 0, "k")
        assert httpx.put(
            f"{server.url}/documents/kept", params={"filename": "k.md", "wait": 60}, content=kept
        ).is_success
        acknowledged["kept"] = kept
    with live_server(corpus, index, env={CRASH_ENV: point}) as server:
        text = note(8, 1, "z")
        try:
            response = httpx.put(f"{server.url}/documents/crash", params={"filename": "c.md"}, content=text)
            if response.status_code == 202:
                acknowledged["crash"] = text
            if httpx.delete(f"{server.url}/documents/kept").status_code == 202:
                deleted.add("kept")
        except httpx.TransportError:
            pass  # killed before it answered: nothing was promised
        assert server.process.wait(timeout=60) == -9  # it did die at that point
    with live_server(corpus, index) as server:
        wait_idle(server.url)
        listed = httpx.get(f"{server.url}/documents", params={"limit": 200}).json()["documents"]
        indexed = {d["doc_id"]: d["sha256"] for d in listed}
        on_disk = {d.doc_id: d.sha256 for d in load_corpus(corpus)}
        assert indexed == on_disk
        assert not deleted & set(on_disk)
        for doc_id, text in acknowledged.items():
            if doc_id in deleted:
                continue
            served = httpx.get(f"{server.url}/documents/{doc_id}").json()
            assert served["text"] == text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".index.tmp-", ".index.encoder-"))]
