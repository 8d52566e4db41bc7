"""citeqa behind a real Open WebUI: its model list shows `citeqa`, and a chat sent through Open
WebUI's own chat pipeline (as its page sends one: a saved chat, a message id, a session) stores
citeqa's answer and one source per passage in the chat's message, which is what its page shows
as citations. Run by `make openwebui-check` (Open WebUI from PyPI in .venv-openwebui, about 2.4 GB:
too heavy for `make test`); prints one line a check and exits 1 on the first failure.

    python tests/llm/openwebui_check.py --open-webui .venv-openwebui/bin/open-webui --index index
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
QUESTION = "Which group claimed responsibility for the Crocus City Hall attack?"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(url: str, within_s: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{url}: the process ended (exit {process.returncode})"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url}: not ready within {within_s} s")


def check(open_webui: str, index: Path, scratch: Path) -> None:
    citeqa_port, webui_port = free_port(), free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    citeqa_cmd = [sys.executable, "-m", "service.cli", "serve", "--index", str(index), "--port", str(citeqa_port)]
    webui_env = {
        **os.environ,
        "DATA_DIR": str(scratch),
        "OPENAI_API_BASE_URL": f"http://127.0.0.1:{citeqa_port}/v1",
        "OPENAI_API_KEY": "unused",
        "ENABLE_OLLAMA_API": "False",
        "HF_HUB_OFFLINE": "1",
        "OFFLINE_MODE": "True",
        "WEBUI_SECRET_KEY": uuid.uuid4().hex,
        "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "False",
    }
    webui_cmd = [open_webui, "serve", "--host", "127.0.0.1", "--port", str(webui_port)]
    with open(scratch / "citeqa.log", "wb") as citeqa_log, open(scratch / "open-webui.log", "wb") as webui_log:
        started: list[subprocess.Popen[bytes]] = []
        try:  # whatever fails, every process started here is stopped
            citeqa = subprocess.Popen(citeqa_cmd, env=env, cwd=REPO, stdout=citeqa_log, stderr=citeqa_log)
            started.append(citeqa)
            webui = subprocess.Popen(webui_cmd, env=webui_env, cwd=scratch, stdout=webui_log, stderr=webui_log)
            started.append(webui)
            wait_until(f"http://127.0.0.1:{citeqa_port}/readyz", 90, citeqa)
            wait_until(f"http://127.0.0.1:{webui_port}/health", 300, webui)
            converse(f"http://127.0.0.1:{webui_port}", f"http://127.0.0.1:{citeqa_port}")
        finally:
            for process in reversed(started):
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def converse(webui: str, citeqa: str) -> None:
    account = {"name": "check", "email": "check@example.com", "password": uuid.uuid4().hex}
    token = httpx.post(f"{webui}/api/v1/auths/signup", json=account, timeout=60).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    models = [m["id"] for m in httpx.get(f"{webui}/api/models", headers=headers, timeout=60).json()["data"]]
    assert "citeqa" in models, models
    print("ok  Open WebUI lists the model citeqa from /v1/models")
    user_id, answer_id, now = str(uuid.uuid4()), str(uuid.uuid4()), int(time.time())
    messages = {
        user_id: {"id": user_id, "parentId": None, "childrenIds": [answer_id], "role": "user",
                  "content": QUESTION, "timestamp": now},
        answer_id: {"id": answer_id, "parentId": user_id, "childrenIds": [], "role": "assistant",
                    "content": "", "model": "citeqa", "timestamp": now},
    }  # fmt: skip
    history = {"messages": messages, "currentId": answer_id}
    chat = {"title": "check", "models": ["citeqa"], "history": history, "messages": list(messages.values())}
    chat_id = httpx.post(f"{webui}/api/v1/chats/new", headers=headers, json={"chat": chat}, timeout=60).json()["id"]
    body = {
        "model": "citeqa",
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
        "chat_id": chat_id,
        "id": answer_id,
        "session_id": uuid.uuid4().hex,
        "params": {},
        "features": {},
    }
    started = httpx.post(f"{webui}/api/chat/completions", headers=headers, json=body, timeout=120)
    assert started.status_code == 200, started.text
    message: dict[str, Any] = {}
    for _ in range(120):
        time.sleep(0.5)
        saved = httpx.get(f"{webui}/api/v1/chats/{chat_id}", headers=headers, timeout=60).json()
        message = saved["chat"]["history"]["messages"][answer_id]
        if message.get("done"):
            break
    assert message.get("done"), f"Open WebUI did not finish the answer: {message}"
    assert message.get("content"), message
    print(f"ok  the answer came through Open WebUI's chat pipeline: {message['content'][:70]!r}…")
    sources = message.get("sources") or []
    passages = httpx.post(f"{citeqa}/ask", json={"question": QUESTION}, timeout=60).json()["passages"]
    assert len(sources) == len(passages), (len(sources), len(passages))
    for source, passage in zip(sources, passages, strict=True):
        citation = passage["citation"]
        assert source["source"]["id"] == f"{citation['doc_id']}:{citation['start']}-{citation['end']}", source
        assert source["document"] == [passage["text"]], source
    print(
        f"ok  Open WebUI stored {len(sources)} sources on the message, one a passage in rank order, each its exact text"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open-webui", required=True, help="the open-webui command")
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    found = shutil.which(args.open_webui)
    open_webui = os.path.abspath(found) if found else None  # absolute: Open WebUI runs in a scratch folder
    if open_webui is None:
        print(f"openwebui-check: FAILED: no command {args.open_webui}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="citeqa-openwebui-") as scratch:
        try:
            check(open_webui, args.index.resolve(), Path(scratch))
        except (AssertionError, OSError, httpx.HTTPError, KeyError) as failure:
            print(f"openwebui-check: FAILED: {failure}", file=sys.stderr)
            for name in ("citeqa.log", "open-webui.log"):
                log = Path(scratch) / name
                if log.exists():
                    print(f"--- {name} (tail)\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
            return 1
    print("openwebui-check: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
