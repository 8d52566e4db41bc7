"""The live corpus over real servers on loopback: writes, generations, workers and kill -9."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ingest.documents import load_corpus
from ingest.index_store import CHUNKS_FILE
from tests.conftest import Server
from tests.service.live_support import live_copy, live_server, wait_idle

CLIENTS = 16
CYCLES = 20
ARTICLE_ID = load_corpus(Path(__file__).resolve().parents[2] / "corpus")[0].doc_id


def note(client: int, cycle: int, version: str) -> str:
    """A small document whose every version has words of its own, so a passage names its version."""
    return (
        f"# Harbour log {client}\n\nThe harbour of Quellport{client} was dredged in cycle {cycle} "
        f"(version {version}{cycle}). Ships from Quellport{client} carried salt, and "
        f"the{version}{cycle}marker ledger records it.\n"
    )


@pytest.fixture(scope="module")
def live(real_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, Path]]:
    corpus, index = live_copy(real_index, tmp_path_factory.mktemp("live"))
    with live_server(corpus, index) as server:
        yield server, corpus, index


def article_chunk_ids(index: Path) -> list[str]:
    rows = [json.loads(line) for line in (index / CHUNKS_FILE).read_text(encoding="utf-8").splitlines()]
    return [row["chunk_id"] for row in rows if row["doc_id"] == ARTICLE_ID]


def test_unreadable_file_is_refused_and_nothing_is_written(live: tuple[Server, Path, Path]) -> None:
    server, corpus, _ = live
    before = sorted(p.name for p in corpus.iterdir())
    response = httpx.put(
        f"{server.url}/documents/broken", content=b"%PDF-1.4 not really", headers={"content-type": "application/pdf"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert sorted(p.name for p in corpus.iterdir()) == before
    assert httpx.get(f"{server.url}/index").json()["queue"] == []


def test_put_replace_delete_one_document(live: tuple[Server, Path, Path]) -> None:
    server, corpus, index = live
    ids_before = article_chunk_ids(index)
    first = httpx.put(
        f"{server.url}/documents/solo", params={"filename": "solo.md", "wait": 60}, content=note(0, 1, "a").encode()
    )
    assert first.status_code == 200, first.text
    generation = first.json()["generation"]
    listed = {d["doc_id"]: d for d in httpx.get(f"{server.url}/documents", params={"limit": 200}).json()["documents"]}
    assert listed["solo"]["generation"] == generation
    assert listed[ARTICLE_ID]["generation"] < generation  # unchanged content keeps its generation
    replaced = httpx.put(
        f"{server.url}/documents/solo",
        params={"wait": 60},
        content=note(0, 2, "b").encode(),
        headers={"content-type": "text/markdown"},
    )
    assert replaced.json()["generation"] > generation
    answer = httpx.post(f"{server.url}/ask", json={"question": "When was the harbour of Quellport0 dredged?"}).json()
    assert answer["generation"] == replaced.json()["generation"]
    solo = [p for p in answer["passages"] if p["citation"]["doc_id"] == "solo"]
    assert solo and all("b2marker" in p["text"] for p in solo)  # replaced, not duplicated
    assert not any("a1marker" in p["text"] for p in answer["passages"])
    deleted = httpx.delete(f"{server.url}/documents/solo", params={"wait": 60})
    assert deleted.status_code == 200
    answer = httpx.post(f"{server.url}/ask", json={"question": "When was the harbour of Quellport0 dredged?"}).json()
    assert all(p["citation"]["doc_id"] != "solo" for p in answer["passages"])
    assert article_chunk_ids(index) == ids_before
    assert not (corpus / "solo.md").exists()
    assert httpx.delete(f"{server.url}/documents/solo").status_code == 404


def test_sixteen_clients_add_replace_delete_under_load(live: tuple[Server, Path, Path]) -> None:
    server, corpus, _ = live
    article = (corpus / next(p.name for p in corpus.iterdir() if p.suffix == ".txt")).read_text(encoding="utf-8")
    versions: dict[str, dict[str, str]] = {f"c{i}": {} for i in range(CLIENTS)}  # doc id -> version key -> text
    seen: list[tuple[int, str, str]] = []  # (generation, doc id, version key) of every cited passage
    errors: list[str] = []
    lock = threading.Lock()

    def check(response: httpx.Response, client: int) -> int:
        body = response.json()
        generation = int(body["generation"])
        for passage in body["passages"]:
            cite = passage["citation"]
            doc_id, span = cite["doc_id"], slice(cite["start"], cite["end"])
            if doc_id == ARTICLE_ID:
                if article[span] != passage["text"]:
                    errors.append("article citation does not slice the article")
                continue
            with lock:
                candidates = dict(versions.get(doc_id, {}))
            matching = [key for key, text in candidates.items() if text[span] == passage["text"]]
            if len(matching) != 1:
                errors.append(f"{doc_id}[{span.start}:{span.stop}] matches {len(matching)} versions")
            else:
                seen.append((generation, doc_id, matching[0]))
        return generation

    def client(number: int) -> None:
        doc_id = f"c{number}"
        last_generation = 0
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for cycle in range(CYCLES):
                for version in ("a", "b"):
                    text = note(number, cycle, version)
                    with lock:
                        versions[doc_id][f"{version}{cycle}"] = text
                    put = http.put(f"/documents/{doc_id}", params={"filename": "x.md"}, content=text.encode())
                    if put.status_code != 202:
                        errors.append(f"PUT {put.status_code} {put.text}")
                    asked = http.post("/ask", json={"question": f"When was Quellport{number} dredged?", "k": 3})
                    if asked.status_code != 200:
                        errors.append(f"ask {asked.status_code} {asked.text}")
                        continue
                    generation = check(asked, number)
                    if generation < last_generation:
                        errors.append(f"generation went back from {last_generation} to {generation}")
                    last_generation = generation
                gone = http.delete(f"/documents/{doc_id}")
                if gone.status_code != 202:
                    errors.append(f"DELETE {gone.status_code} {gone.text}")

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))
    status = wait_idle(server.url, timeout=120)
    elapsed = time.monotonic() - started
    assert errors == [], errors[:5]
    by_generation: dict[tuple[int, str], set[str]] = {}
    for generation, doc_id, version in seen:
        by_generation.setdefault((generation, doc_id), set()).add(version)
    mixed = {key: found for key, found in by_generation.items() if len(found) > 1}
    assert not mixed, f"one generation showed two versions of a document: {list(mixed.items())[:3]}"
    listed = httpx.get(f"{server.url}/documents", params={"limit": 200}).json()
    assert [d["doc_id"] for d in listed["documents"]] == [ARTICLE_ID]  # every client document deleted
    assert len(seen) > CLIENTS  # the client documents were answered while they existed
    print(f"\nload: {CLIENTS} clients x {CYCLES} cycles in {elapsed:.1f}s, generation {status['generation']}")


def test_writes_are_refused_without_a_key_or_the_switch(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    from service.app import create_app
    from service.settings import Settings

    def no_index(settings: Settings) -> object:
        raise RuntimeError("not needed")

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    settings = Settings(index_dir=tmp_path / "index", corpus_dir=corpus)
    with TestClient(create_app(settings, loader=no_index)) as http:  # type: ignore[arg-type]
        refused = http.put("/documents/x", params={"filename": "x.md"}, content=b"# x\n\ntext")
        assert refused.status_code == 403
        assert "CITEQA_ALLOW_WRITES" in refused.json()["detail"]
    keyed = Settings(index_dir=tmp_path / "index", corpus_dir=corpus, api_key=SecretStr("sesame"))
    with TestClient(create_app(keyed, loader=no_index)) as http:  # type: ignore[arg-type]
        assert http.delete("/documents/x").status_code == 401
    assert list(corpus.iterdir()) == []


def test_watch_indexes_files_dropped_into_the_corpus_folder(real_index: Path, tmp_path: Path) -> None:
    """`citeqa serve --watch`: a file copied into the corpus by hand becomes answerable, and
    removing it removes its passages, with no HTTP write at all."""
    corpus, index = live_copy(real_index, tmp_path)
    question = "When was the harbour of Quellport7 dredged?"
    with live_server(corpus, index, "--watch") as server:
        (corpus / "dropped.md").write_text(note(7, 3, "w"), encoding="utf-8")
        deadline = time.monotonic() + 90
        while True:
            passages = httpx.post(f"{server.url}/ask", json={"question": question}).json()["passages"]
            if any("w3marker" in p["text"] for p in passages):
                break
            assert time.monotonic() < deadline, "the dropped file was never indexed"
            time.sleep(0.5)
        (corpus / "dropped.md").unlink()
        while True:
            passages = httpx.post(f"{server.url}/ask", json={"question": question}).json()["passages"]
            if not any("w3marker" in p["text"] for p in passages):
                break
            assert time.monotonic() < deadline + 90, "the removed file was never dropped from the index"
            time.sleep(0.5)
