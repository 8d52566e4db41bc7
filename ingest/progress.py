"""Ingest progress for logs: plain lines (stage, done/total, rate, ETA) at a steady pace."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class LogProgress:
    """A progress callback for when stderr is not a terminal: one line per stage at most every
    `interval` seconds, plus its first and last step, so a log shows steady signs of life."""

    def __init__(self, stream: TextIO | None = None, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._started: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        started = self._started.setdefault(stage, now)
        first = stage not in self._last
        if not (first or done >= total or now - self._last[stage] >= self.interval):
            return
        self._last[stage] = now
        elapsed = now - started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        eta_text = f"ETA {eta:.0f}s" if eta is not None and done < total else ("done" if done >= total else "ETA ?")
        line = f"ingest: {stage}: {done}/{total} ({rate:.1f}/s, {elapsed:.0f}s elapsed, {eta_text})"
        print(line, file=self.stream, flush=True)
