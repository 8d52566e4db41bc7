"""`make docker-test`: the built image, run as real containers, keeps the promises of docs/operations.md.

Standard library only, so it runs with any python3 beside a Docker client. Every container it
starts is removed at the end, whatever happened. Exit 0 when every check holds, else 1.

    python3 tests/docker_check.py --image citeqa:latest [--docker /usr/bin/docker]
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

API_KEY = "docker-check-key"
QUESTIONS = ("Who is Aymenn Al-Tamimi?", "Which band was about to play when the attack began?", "What is Khorasan?")
READY_WITHIN_S = 30
HEALTHY_WITHIN_S = 60


class Check:
    def __init__(self, docker: str, image: str) -> None:
        self.docker = docker
        self.image = image
        self.containers: list[str] = []

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.docker, *args], capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, timeout: float = 120) -> str:
        result = self.run(*args, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def python_in_image(self, code: str) -> subprocess.CompletedProcess[str]:
        return self.run("run", "--rm", "--read-only", self.image, "python", "-c", code)

    def start(self, *options: str) -> str:
        name = f"citeqa-check-{uuid.uuid4().hex[:10]}"
        self.containers.append(name)  # removed in remove_all, even if the start fails
        self.ok("run", "-d", "--name", name, "-p", "127.0.0.1::8000", *options, self.image)
        return name

    def url(self, name: str) -> str:
        return "http://" + self.ok("port", name, "8000/tcp").splitlines()[0]

    def remove_all(self) -> None:
        for name in self.containers:
            self.run("rm", "-f", "-v", name)


IMAGE_LIMIT_BYTES = 10**9  # the serving image stays within 1 GB (no torch; issue 20: no heavy dependency)


def fetch(url: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_for(what: str, condition: Callable[[], bool], within_s: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within_s:
            raise AssertionError(f"{what}: not within {within_s} s")
        time.sleep(0.2)
    return time.monotonic() - started


def answers(url: str) -> bool:
    try:
        return fetch(url)[0] == 200
    except OSError:
        return False


def check_image(check: Check) -> None:
    absent = check.python_in_image(
        "import importlib.util as u; print([n for n in ('torch', 'sentence_transformers', 'transformers', 'onnx')"
        " if u.find_spec(n) is not None])"
    )
    assert absent.returncode == 0 and absent.stdout.strip() == "[]", f"ingest-only packages in the image: {absent}"
    torch = check.python_in_image("import torch")
    assert torch.returncode != 0 and "No module named 'torch'" in torch.stderr, torch.stderr
    present = check.python_in_image("import onnxruntime, tokenizers, faiss, service.app")
    assert present.returncode == 0, present.stderr
    print("ok  image: no torch, sentence_transformers, transformers, onnx; serves with onnxruntime + tokenizers")
    user = check.ok("image", "inspect", "--format", "{{.Config.User}}", check.image)
    assert user == "10001", f"image user {user!r}"
    # Owned by root, writable by nobody else: the app cannot change its own code, venv or index.
    writable = check.ok(
        "run", "--rm", check.image, "find", "/app", "/opt/citeqa", "!", "-type", "l",
        "(", "!", "-user", "root", "-o", "-perm", "/022", ")", "-print", "-quit",
    )  # fmt: skip
    assert writable == "", f"not root-owned or group/world-writable: {writable}"
    print("ok  image: user 10001; /app and the venv owned by root, writable only by root")


def check_serving(check: Check) -> None:
    started = time.monotonic()
    name = check.start("--read-only", "--tmpfs", "/tmp", "-e", f"CITEQA_API_KEY={API_KEY}")
    url = check.url(name)
    try:
        wait_for("/readyz 200", lambda: answers(f"{url}/readyz"), READY_WITHIN_S)
    except AssertionError:
        print(check.run("logs", "--tail", "40", name).stderr, file=sys.stderr)
        raise
    print(f"ok  /readyz 200 {time.monotonic() - started:.1f} s after docker run (read-only, API key set)")

    status = check.ok("exec", name, "cat", "/proc/1/status")
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {"10001"}, f"the server process runs as uid {uids}"
    print("ok  the server process (pid 1) runs as uid 10001")
    for path in ("/app/index/touched", "/opt/citeqa/touched", "/touched"):
        assert check.run("exec", name, "touch", path).returncode != 0, f"{path} was writable"
    assert check.run("exec", name, "touch", "/tmp/touched").returncode == 0, "/tmp (tmpfs) not writable"
    print("ok  root filesystem read-only (--read-only, tmpfs /tmp), and the container serves")

    question = {"question": QUESTIONS[0]}
    assert fetch(f"{url}/ask", question)[0] == 401, "CITEQA_API_KEY set, /ask answered without the key"
    assert fetch(f"{url}/ask", question, key="wrong")[0] == 401
    assert fetch(f"{url}/healthz")[0] == 200
    print("ok  CITEQA_API_KEY takes effect: /ask 401 without 'Authorization: Bearer <key>'")

    documents: dict[str, str] = {}
    checked = 0
    for text in QUESTIONS:
        code, body = fetch(f"{url}/ask", {"question": text, "k": 5}, key=API_KEY)
        assert code == 200 and body["passages"], (code, body)
        for passage in body["passages"]:
            citation = passage["citation"]
            if citation["doc_id"] not in documents:
                code, document = fetch(f"{url}/documents/{citation['doc_id']}", key=API_KEY)
                assert code == 200, (code, document)
                documents[citation["doc_id"]] = document["text"]
            source = documents[citation["doc_id"]]
            assert source[citation["start"] : citation["end"]] == passage["text"], citation
            answer = passage["answer"]
            assert source[answer["start"] : answer["end"]] == answer["text"], answer
            checked += 1
    print(f"ok  /ask: {checked} passages and their answers slice exactly from GET /documents/{{doc_id}}")

    # The integrations without an LLM: a written answer is the extractive one; /v1 and /mcp answer.
    code, body = fetch(f"{url}/ask", {"question": QUESTIONS[0], "written": True}, key=API_KEY)
    assert code == 200 and body["written"]["status"] == "extractive", (code, body)
    code, models = fetch(f"{url}/v1/models", key=API_KEY)
    assert code == 200 and [m["id"] for m in models["data"]] == ["citeqa"], (code, models)
    chat = {"model": "citeqa", "messages": [{"role": "user", "content": QUESTIONS[0]}]}
    code, completion = fetch(f"{url}/v1/chat/completions", chat, key=API_KEY)
    assert code == 200 and completion["choices"][0]["message"]["content"], (code, completion)
    assert fetch(f"{url}/v1/models")[0] == 401
    print("ok  written answers fall back without an LLM; /v1/models and /v1/chat/completions answer, behind the key")

    # A client that writes a 10 MB body before reading, asking to close, still reads the 413.
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    big = b'{"question": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    headers = {"Content-Type": "application/json", "Connection": "close", "Authorization": f"Bearer {API_KEY}"}
    connection.request("POST", "/ask", body=big, headers=headers)
    assert connection.getresponse().status == 413
    connection.close()
    print("ok  a 10 MB body sent whole with Connection: close is answered 413")

    def healthy() -> bool:
        state = check.ok("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", name)
        assert state in ("starting", "healthy"), f"health {state!r}"
        return state == "healthy"

    healthy_s = wait_for("HEALTHCHECK healthy", healthy, HEALTHY_WITHIN_S)
    print(f"ok  HEALTHCHECK healthy ({healthy_s:.0f} s more; the first check runs 10 s after start)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="citeqa:latest")
    parser.add_argument("--docker", default="docker", help="the Docker client (here: /usr/bin/docker)")
    args = parser.parse_args()
    check = Check(args.docker, args.image)
    started = time.monotonic()
    try:
        size = int(check.ok("image", "inspect", "--format", "{{.Size}}", args.image))
        print(f"image {args.image}: {size / 1e9:.2f} GB")
        assert size <= IMAGE_LIMIT_BYTES, f"the serving image is {size / 1e9:.2f} GB, over 1 GB"
        check_image(check)
        check_serving(check)
    except (AssertionError, subprocess.TimeoutExpired, OSError) as failure:
        print(f"docker-test: FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        check.remove_all()
    print(f"docker-test: all checks passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
