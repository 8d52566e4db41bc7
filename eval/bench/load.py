"""Load generation and process measurement for `citeqa bench`: wrk against servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ingest.errors import CiteqaError

LUA = Path(__file__).resolve().parent / "wrk_ask.lua"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    url: str
    process: subprocess.Popen[bytes]
    ready_s: float

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the process and its children (VmHWM), in MB."""
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total = max(total, int(line.split()[1]))
            except OSError:
                continue
        return total / 1024


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = task / "children"
        if children.exists():
            for child in children.read_text().split():
                found.extend([int(child), *_children(int(child))])
    return found


@contextmanager
def started(
    command: list[str], port: int, cwd: Path, env: dict[str, str], timeout: float = 600, log_path: Path | None = None
) -> Iterator[Running]:
    """Start a server (in its own process group), time it until /readyz answers 200, stop it.
    Its output goes to a file (`log_path`, or a temporary one): an unread pipe would fill up
    with access logs and stall the server."""
    url = f"http://127.0.0.1:{port}"
    begun = time.perf_counter()
    with log_path.open("w+b") if log_path else tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    tail = log.read()[-400:].decode(errors="replace")
                    raise CiteqaError(f"{command[0]} exited with {process.returncode}: {tail}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - begun > timeout:
                    raise CiteqaError(f"{' '.join(command)} was not ready after {timeout:.0f}s")
                time.sleep(0.05)
            yield Running(url, process, time.perf_counter() - begun)
        finally:
            with _suppress_lookup():
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with _suppress_lookup():
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _suppress_lookup() -> contextlib.suppress:
    return contextlib.suppress(ProcessLookupError)


def wrk(url: str, concurrency: int, seconds: float, questions: Path) -> dict[str, Any]:
    """Distinct questions (each request adds its own counter), so no cache can help."""
    binary = shutil.which("wrk")
    if binary is None:
        raise CiteqaError("the benchmark needs wrk (Debian: apt-get install wrk)")
    threads = min(2, concurrency)
    result = subprocess.run(
        [binary, f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(LUA), url],
        env={**os.environ, "CITEQA_BENCH_QUESTIONS": str(questions)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((s for s in result.stdout.splitlines() if s.startswith("CITEQA_RESULT ")), None)
    if line is None:
        raise CiteqaError(f"wrk gave no result: {result.stdout[-300:]} {result.stderr[-300:]}")
    raw = json.loads(line.removeprefix("CITEQA_RESULT "))
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    seconds_run = raw["duration_us"] / 1e6
    return {
        "concurrency": concurrency,
        "requests": raw["requests"],
        "throughput_rps": raw["requests"] / seconds_run,
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": errors,
    }


def write_questions(questions: list[str], path: Path) -> Path:
    """One question a line, escaped for the JSON body that the Lua script builds."""
    path.write_text("\n".join(json.dumps(q)[1:-1] for q in questions) + "\n", encoding="utf-8")
    return path
