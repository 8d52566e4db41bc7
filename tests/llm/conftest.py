"""The scripted OpenAI-compatible server (a real process) and a citeqa app that reads with it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

SCRIPTED = Path(__file__).with_name("scripted_llm.py")


@dataclass
class Scripted:
    url: str  # the base URL, ending in /v1

    def script(self, reply: str, mode: str = "normal", delay: float = 0.0) -> None:
        root = self.url.removesuffix("/v1")
        httpx.post(f"{root}/script", json={"reply": reply, "mode": mode, "delay": delay}, timeout=5).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        root = self.url.removesuffix("/v1")
        return list(httpx.get(f"{root}/requests", timeout=5).json())


@pytest.fixture(scope="session")
def scripted_llm() -> Iterator[Scripted]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SCRIPTED), str(port)])
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{root}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the scripted LLM did not start"
            time.sleep(0.05)
        yield Scripted(f"{root}/v1")
    finally:
        process.terminate()
        process.wait(timeout=10)
