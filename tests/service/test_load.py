"""A bounded load test on the real server process (127.0.0.1 only): 16 clients × 50 requests."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from eval.questions import load_questions
from tests.conftest import Server

pytestmark = [pytest.mark.integration, pytest.mark.server]

CLIENTS = 16
REQUESTS_PER_CLIENT = 50


def test_sixteen_clients_see_no_errors_and_health_stays_responsive(server: Server) -> None:
    questions = [q.question for q in load_questions()]
    health_codes: list[int] = []

    def client(number: int) -> list[int]:
        codes = []
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(REQUESTS_PER_CLIENT):
                # Distinct questions: no request repeats another, so no cache can help.
                question = f"{questions[(number * REQUESTS_PER_CLIENT + i) % len(questions)]} ({number}-{i})"
                codes.append(http.post("/ask", json={"question": question, "k": 5}).status_code)
        return codes

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        futures = [pool.submit(client, n) for n in range(CLIENTS)]
        health_times = []
        while not all(f.done() for f in futures):
            t0 = time.perf_counter()
            health_codes.append(httpx.get(f"{server.url}/healthz", timeout=30).status_code)
            health_times.append(time.perf_counter() - t0)
            time.sleep(0.2)
        codes = [c for f in futures for c in f.result()]
    elapsed = time.perf_counter() - started
    assert len(codes) == CLIENTS * REQUESTS_PER_CLIENT
    assert set(codes) == {200}, {c: codes.count(c) for c in set(codes)}
    assert health_codes and set(health_codes) == {200}
    print(
        f"\n{len(codes)} requests in {elapsed:.1f}s ({len(codes) / elapsed:.0f}/s); "
        f"/healthz during load median {statistics.median(health_times) * 1000:.1f} ms"
    )
