"""Protections at the edge: body size and content type, admission control, API key."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")
BODY_METHODS = {"POST", "PUT", "PATCH"}


async def send_problem(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None, more_body: bool = False
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": more_body})


# After a 413 the rest of the body is read and thrown away, at most this much for this long:
# a client that writes its whole body before reading (urllib, http.client) then reads the 413
# instead of a connection reset, and a client that never stops sending is still cut off.
DRAIN_MAX_BYTES = 16 * 1024 * 1024
DRAIN_MAX_SECONDS = 5.0


async def _refuse_and_drain(send: Send, receive: Receive, detail: str, left: int | None) -> None:
    """Send a complete 413 (Content-Length, `Connection: close`) at once, then read and discard
    what the client still sends before the server closes: closing a socket with unread data
    makes the kernel reset the connection, and a client still uploading never sees the answer.
    `left` is what the client declared it would still send (None: chunked, unknown)."""
    close = [(b"connection", b"close")]
    if left is not None and left > DRAIN_MAX_BYTES:
        await send_problem(send, 413, detail, close)  # more than the drain would take: close at once
        return
    # The body is on the wire already, but the response is held open (more_body) while
    # draining: the ASGI server stops delivering the request body once a response is complete.
    await send_problem(send, 413, detail, close, more_body=True)
    drained = 0
    deadline = time.monotonic() + DRAIN_MAX_SECONDS
    with contextlib.suppress(TimeoutError):
        while drained <= DRAIN_MAX_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            message = await asyncio.wait_for(receive(), timeout=remaining)
            if message["type"] == "http.disconnect":
                break
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class BodyGuard:
    """Refuses a body that is not JSON (415) or larger than `max_bytes` (413) while reading it,
    chunked uploads included, so a 10 MB body is never held in memory; replays the rest.
    After a 413 the rest of the body is drained (bounded), so that every client reads the 413."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_prefix: str | None = None,
        upload_max_bytes: int = 0,
        path_max_bytes: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Document uploads (PUT under this prefix) are files of any format, with their own limit.
        self.upload_prefix = upload_prefix
        self.upload_max_bytes = upload_max_bytes
        # JSON bodies of these exact paths have their own limit (a chat client sends the whole conversation).
        self.path_max_bytes = dict(path_max_bytes or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        upload = bool(self.upload_prefix) and scope["method"] == "PUT" and scope["path"].startswith(self.upload_prefix)
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json" and not upload:
            await send_problem(send, 415, "the request body must be JSON (Content-Type: application/json)")
            return
        max_bytes = self.upload_max_bytes if upload else self.path_max_bytes.get(scope["path"], self.max_bytes)
        declared = headers.get(b"content-length")
        too_large = f"the request body is larger than {max_bytes} bytes"
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            if not declared.isdigit() or headers.get(b"expect", b"").lower() == b"100-continue":
                # Nothing to drain: no trustworthy length, or the client waits for a go-ahead.
                await send_problem(send, 413, too_large, [(b"connection", b"close")])
            else:
                await _refuse_and_drain(send, receive, too_large, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                if message.get("more_body", False):
                    await _refuse_and_drain(send, receive, too_large, None)
                else:
                    await send_problem(send, 413, too_large, [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            if not upload:  # a document's bytes are its reader's to judge (a PDF is binary)
                body.decode("utf-8")
        except UnicodeDecodeError:
            await send_problem(send, 400, "the request body is not valid UTF-8")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Overloaded(Exception):
    """More requests than the service admits at once."""


class TimedOut(Exception):
    """A request ran past its deadline."""


class SearchGate:
    """At most `running` searches in worker threads and `waiting` more queued; past that a
    request is refused at once (503) rather than queued without bound. A request that is
    not done within `timeout_s` of arriving is answered 504; its thread still holds its slot
    until it finishes, so timed-out work cannot pile up."""

    def __init__(self, running: int, waiting: int, timeout_s: float) -> None:
        self.capacity = running + waiting
        self.timeout_s = timeout_s
        self.admitted = 0
        self._slots = asyncio.Semaphore(running)
        self._executor = ThreadPoolExecutor(max_workers=running, thread_name_prefix="search")

    async def run(self, work: Callable[[], T]) -> T:
        if self.admitted >= self.capacity:
            raise Overloaded
        deadline = time.monotonic() + self.timeout_s
        self.admitted += 1
        if self._slots.locked():  # only then is there anything to wait for
            try:
                await asyncio.wait_for(self._slots.acquire(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.admitted -= 1
                raise TimedOut from None
        else:
            await self._slots.acquire()
        future = asyncio.get_running_loop().run_in_executor(self._executor, work)

        def release(_: Any) -> None:
            self._slots.release()
            self.admitted -= 1

        future.add_done_callback(release)
        # A bare waiter woken by the result or by a timer: no task, and the work is not cancelled
        # when the deadline passes (its thread keeps the slot until it is done).
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()

        def wake(_: Any = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        future.add_done_callback(wake)
        timer = loop.call_later(max(0.0, deadline - time.monotonic()), wake)
        try:
            await waiter
        finally:
            timer.cancel()
        if not future.done():
            raise TimedOut
        return future.result()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


API_KEY_MISSING = "missing or wrong API key (send 'Authorization: Bearer <key>')"


def api_key_matches(authorization: str, expected: str | None) -> bool:
    """Whether an Authorization header carries the key, compared in constant time; any header
    matches when no key is configured."""
    if not expected:
        return True
    return hmac.compare_digest(authorization.encode(), f"Bearer {expected}".encode())


def check_api_key(request: Request, expected: str | None) -> None:
    """Bearer token check in constant time; a no-op when no key is configured."""
    if not api_key_matches(request.headers.get("authorization", ""), expected):
        raise HTTPException(status_code=401, detail=API_KEY_MISSING, headers={"WWW-Authenticate": "Bearer"})
