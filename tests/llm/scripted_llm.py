"""A scripted OpenAI-compatible chat server, run as its own process by the tests: it answers
`/v1/chat/completions` (streamed or not) with what the test told it to, for the cases that must
be exact (an unknown marker, a marker to an irrelevant passage, no markers, a stream cut off, a
reply slower than the timeout, garbage). Standard library only.

    python tests/llm/scripted_llm.py PORT

POST /script {"reply": str, "mode": "normal"|"cut"|"slow"|"garbage"|"error", "delay": s}
sets what the next completions get; GET /requests returns the bodies received so far.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATE: dict[str, Any] = {"reply": "It is so. [1]", "mode": "normal", "delay": 0.0, "requests": []}
LOCK = threading.Lock()


def _chunk(text: str | None, finish: str | None = None) -> bytes:
    delta = {} if text is None else {"content": text}
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _pieces(text: str, size: int = 3) -> list[str]:
    """Small pieces, so that markers are split across chunks as real servers split them."""
    return [text[i : i + size] for i in range(0, len(text), size)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: a cut stream is one

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/requests":
            with LOCK:
                self._json(200, STATE["requests"])
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "tests"}]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/script":
            with LOCK:
                STATE.update({"reply": "", "mode": "normal", "delay": 0.0, **body})
                STATE["requests"] = []
            self._json(200, {"ok": True})
            return
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": "not found"})
            return
        with LOCK:
            STATE["requests"].append(body)
            reply, mode, delay = STATE["reply"], STATE["mode"], float(STATE["delay"])
        if mode == "error":
            self._json(500, {"error": "scripted failure"})
            return
        if mode == "slow":
            time.sleep(delay)
        if mode == "garbage":
            data = b"<html>not a completion</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(data)
            return
        if not body.get("stream"):
            self._json(
                200,
                {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": "scripted",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                    ],
                },
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        pieces = _pieces(reply)
        if mode == "cut":  # half the reply, then the connection closes: no finish_reason, no [DONE]
            for piece in pieces[: max(1, len(pieces) // 2)]:
                self.wfile.write(_chunk(piece))
                self.wfile.flush()
            return
        for piece in pieces:
            self.wfile.write(_chunk(piece))
            self.wfile.flush()
            if mode == "slow-stream":
                time.sleep(delay)
        self.wfile.write(_chunk(None, "stop"))
        self.wfile.write(b"data: [DONE]\n\n")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
