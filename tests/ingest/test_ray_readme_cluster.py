"""The Ray cluster commands of docs/operations.md (once the README's), run as written on a 3-node
cluster of `ray start` processes, and what an ingest does when that cluster fails under it: a worker
node lost, the head lost, Ctrl-C.

The cluster lives in a private network namespace (`tests/ingest/ray_namespace.py`); the tests share
it and run in file order, the one that kills the head last.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.ingest.ray_namespace import Namespace, namespace_reason
from tests.ingest.ray_support import assert_same_index, small_corpus

pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra")
CLUSTER_DOC = REPO / "docs" / "operations.md"  # where the cluster commands are documented (once the README's)
START, END = "<!-- ray-cluster-commands:start -->", "<!-- ray-cluster-commands:end -->"
ROLES = {  # the comment that opens each machine's part of the block -> its role
    "# On the head machine": "head",
    "# On each other machine": "worker",
    "# Where citeqa runs": "driver",
    "# When done": "stop",
}
ADDRESS = '"$HEAD:6379"'
PIP_DOCS = ("topics/caching.md", "topics/configuration.md", "topics/authentication.md", "reference/build-system.md")
INGEST_TIMEOUT_S = 240


def readme_commands(readme: Path = CLUSTER_DOC) -> dict[str, str]:
    """The docs' one bash block between the markers, split by machine: 'common' (every machine),
    'head', 'worker', 'driver', 'stop'; the head's address set to loopback, nothing else changed."""
    text = readme.read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, f"{readme} needs one {START} ... {END}"
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block.startswith("```bash\n") and block.endswith("\n```") and block.count("```") == 2
    parts: dict[str, list[str]] = {"common": []}
    role = "common"
    for line in block.removeprefix("```bash\n").removesuffix("\n```").splitlines():
        opening = [r for prefix, r in ROLES.items() if line.startswith(prefix)]
        if opening:
            role = opening[0]
            parts[role] = []
        parts[role].append(line)
    assert set(parts) == {"common", *ROLES.values()}, f"the block's parts: {sorted(parts)}"
    common, substitutions = re.subn(r"^HEAD=\S+", "HEAD=127.0.0.1", "\n".join(parts["common"]), flags=re.M)
    assert substitutions == 1, "the block sets HEAD=... once"
    return {"common": common} | {role: "\n".join(lines) for role, lines in parts.items() if role != "common"}


def test_readme_block_is_found_and_split() -> None:
    commands = readme_commands()
    assert "ray start --head" in commands["head"]
    assert "ray start --address" in commands["worker"]
    assert "citeqa ingest" in commands["driver"] and ADDRESS in commands["driver"]
    assert "ray stop" in commands["stop"]


def cli_ingest(tmp_path: Path, *options: str) -> subprocess.Popen[str]:
    """`citeqa ingest --engine ray` of a small corpus, in this machine's own network."""
    corpus = small_corpus(tmp_path / "corpus")
    command = [
        sys.executable,
        "-m",
        "service.cli",
        "ingest",
        "--corpus",
        str(corpus),
        "--index",
        str(tmp_path / "index"),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [*command, "--engine", "ray", *options],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_no_cluster_at_the_address_is_one_line_at_once(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    process = cli_ingest(tmp_path, "--ray-address", f"127.0.0.1:{port}")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr[-3000:]
    assert stderr.splitlines() == [
        f"citeqa: error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused"
    ]
    assert stdout == ""
    assert time.monotonic() - started < 60  # the CLI's start and the model's check; no Ray at all
    assert leftovers(tmp_path / "index") == []


def test_a_silent_address_gives_up_within_the_connect_timeout(tmp_path: Path) -> None:
    # Something accepts connections there (the kernel does, for a listening socket) and never answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        process = cli_ingest(tmp_path, "--ray-address", f"127.0.0.1:{port}", "--ray-connect-timeout", "5")
        stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr[-3000:]
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith(f"citeqa: error: cannot connect to the Ray cluster at 127.0.0.1:{port} within 5 s")
    assert "RAY_AUTH_MODE=token" in lines[0] and ".index.ray.log" in lines[0]
    assert stdout == ""
    assert leftovers(tmp_path / "index") == []


def _driver_of(pid: int) -> int | None:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        if "ingest.ray_driver" in Path(f"/proc/{child}/cmdline").read_text(errors="replace"):
            return int(child)
    return None


def test_ctrl_c_while_connecting_stops_promptly(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        process = cli_ingest(tmp_path, "--ray-address", f"127.0.0.1:{port}", "--ray-connect-timeout", "300")
        deadline = time.monotonic() + 120
        while (driver := _driver_of(process.pid)) is None:
            assert time.monotonic() < deadline and process.poll() is None, "no Ray driver process started"
            time.sleep(0.2)
        time.sleep(3)  # Ray is importing or connecting
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 10
    assert process.returncode == 130, stderr[-3000:]
    assert stderr.splitlines() == ["citeqa: interrupted"]
    assert stdout == ""
    assert not Path(f"/proc/{driver}").exists()
    assert leftovers(tmp_path / "index") == []


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(index: Path) -> list[str]:
    """Temporary folders of an ingest beside the index (a finished or failed one leaves none)."""
    return sorted(p.name for p in index.parent.glob(f".{index.name}.*") if p.is_dir())


class Lines:
    """A process's stderr read as it comes, so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.ended = False
        self._changed = threading.Condition()
        assert process.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                assert left > 0 and not self.ended, f"no line matching {pattern!r}: {self.lines[-20:]}"
                self._changed.wait(left)

    def finish(self, process: subprocess.Popen[str], timeout: float) -> str:
        """Wait for the process; its stdout (stderr is read here all along, so not by communicate())."""
        process.wait(timeout=timeout)
        assert process.stdout is not None
        return process.stdout.read()

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "\n".join(self.lines)


def own_lines(stderr: str) -> list[str]:
    """stderr less the progress lines and the test's own pid line: what a user is told."""
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(("ingest: ", "pid ", "citeqa: reusing the ONNX encoder"))
    ]


@dataclass
class Cluster:
    namespace: Namespace
    work: Path
    commands: dict[str, str]
    scratch: Path  # TMPDIR of every process in the namespace, Ray's workers included

    def encoder_copies(self) -> list[Path]:
        """Encoder files the embedding actors left on the "machines'" disk (they load from memory)."""
        return sorted(self.scratch.rglob("*.onnx"))

    def ingest(self, index: str, *options: str) -> subprocess.Popen[str]:
        """The documented ingest line, towards another index, with more options."""
        line = self.commands["driver"].splitlines()[-1]
        assert line.startswith("citeqa ingest ") and " --index index " in line
        line = line.replace(" --index index ", f" --index {index} ") + "".join(f" {o}" for o in options)
        return self.namespace.start(f"{self.commands['common']}\nexec {line}")

    def kill(self, pattern: str) -> None:
        result = self.namespace.run(f"pkill -9 -f '{pattern}'", timeout=30)
        assert result.returncode == 0, f"nothing matched {pattern}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = namespace_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("ray-readme")
    corpus = small_corpus(work / "corpus")
    for name in PIP_DOCS:  # enough text that embedding lasts a while on three 1-CPU nodes
        shutil.copy(REPO / "eval" / "corpora" / "pip-docs" / name, corpus / name.replace("/", "-"))
    # Ray's sockets live under its temporary folder: a short path keeps them under the 107-byte limit.
    ray_tmp = Path(tempfile.mkdtemp(prefix="cq-ray-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # the commands set what Ray needs
    env |= {"HOME": str(work / "home"), "RAY_TMPDIR": str(ray_tmp), "TMPDIR": str(ray_tmp)}
    env |= {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `citeqa`, `ray`
    (work / "home").mkdir()
    commands = readme_commands()
    namespace = Namespace(env, work)
    try:
        for role in ("head", "worker", "worker"):  # a head and two other "machines", 1 CPU each
            result = namespace.run(f"set -e\n{commands['common']}\n{commands[role]}", timeout=180)
            assert result.returncode == 0, f"{role}: {result.stdout[-2000:]}{result.stderr[-4000:]}"
        yield Cluster(namespace, work, commands, ray_tmp)
    finally:
        # `ray stop --force` rather than the block's `ray stop`, which gives a cluster whose head was
        # killed 16 s to go; then the namespace's end takes whatever is left.
        namespace.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(cluster: Cluster) -> Path:
    """The same corpus indexed by the local engine, outside the namespace."""
    index = cluster.work / "local"
    command = [sys.executable, "-m", "service.cli", "ingest", "--corpus", str(cluster.work / "corpus")]
    result = subprocess.run(
        [*command, "--index", str(index)], cwd=REPO, env=cluster.namespace.env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return index


def test_readme_commands_give_a_three_node_ingest(cluster: Cluster, reference: Path) -> None:
    result = cluster.namespace.run(f"set -e\n{cluster.commands['common']}\n{cluster.commands['driver']}", 600)
    assert result.returncode == 0, result.stderr[-4000:]
    # stdout is citeqa's own: its one summary line, none of Ray's (colours, raylet, core_worker).
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("indexed "), result.stdout[-2000:]
    assert own_lines(result.stderr) == [], result.stderr[-3000:]
    assert_same_index(cluster.work / "index", reference)
    engine = json.loads((cluster.work / "index" / "manifest.json").read_text(encoding="utf-8"))["engine"]
    assert {k: engine[k] for k in ("name", "nodes", "cpus", "gpus", "workers")} == {
        "name": "ray",
        "nodes": 3,
        "cpus": 3,
        "gpus": 0,
        "workers": 3,
    }
    assert engine["during"]["nodes_lost"] == 0
    assert cluster.encoder_copies() == []
    assert "max_restarts" in (cluster.work / ".index.ray.log").read_text(encoding="utf-8")  # Ray's, kept there


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--cpus-per-worker", "2"), "has at most 1 CPU(s) on a node; --cpus-per-worker asks 2"),
        (("--gpus-per-worker", "1"), "has no GPU; --gpus-per-worker asks 1"),
        (("--workers", "4"), "has room for 3 embedding worker(s) of 1 CPU(s) and 0 GPU(s); --workers asks 4"),
    ],
)
def test_a_cluster_without_what_the_ingest_asks_is_one_line(
    cluster: Cluster, options: tuple[str, ...], message: str
) -> None:
    started = time.monotonic()
    process = cluster.ingest("lacking", *options)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr[-3000:]
    assert own_lines(stderr) == [f"citeqa: error: the Ray cluster at 127.0.0.1:6379 {message}"], stderr[-3000:]
    assert stdout == ""
    assert leftovers(cluster.work / "lacking") == []
    assert time.monotonic() - started < 60


def test_verbose_puts_rays_output_on_stderr_and_never_on_stdout(cluster: Cluster) -> None:
    process = cluster.ingest("verbose", "--cpus-per-worker", "2", "--verbose")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr[-3000:]
    assert stdout == ""
    assert "Connecting to existing Ray cluster at address: 127.0.0.1:6379" in stderr  # Ray's own line
    assert stderr.splitlines()[-1].endswith("--cpus-per-worker asks 2"), stderr[-3000:]
    assert not (cluster.work / ".verbose.ray.log").exists()


def test_ctrl_c_mid_embedding_stops_promptly(cluster: Cluster, reference: Path) -> None:
    index = cluster.work / "interrupted"
    shutil.copytree(reference, index)
    before = tree_digest(index)
    process = cluster.ingest("interrupted")
    stderr = Lines(process)
    pid = int(stderr.wait_for(r"^pid (\d+)$", 10)[1])
    stderr.wait_for(r"^ingest: embed: 0/", INGEST_TIMEOUT_S)
    time.sleep(2)  # the actors are starting or embedding
    cluster.namespace.signal(pid, signal.SIGINT)
    sent = time.monotonic()
    stdout = stderr.finish(process, 60)
    seconds = time.monotonic() - sent
    assert process.returncode == 130, stderr.text()[-3000:]
    assert seconds < 10, f"{seconds:.1f} s after SIGINT"
    assert own_lines(stderr.text()) == ["citeqa: interrupted"], stderr.text()[-3000:]
    assert stdout == ""
    assert tree_digest(index) == before
    assert leftovers(index) == []
    assert cluster.namespace.run("pgrep -f '[i]ngest.ray_driver'").returncode == 1, "the driver process is left"


def test_a_worker_node_killed_mid_embedding_does_not_stop_the_ingest(cluster: Cluster, reference: Path) -> None:
    shutil.copytree(reference, cluster.work / "survived")  # its encoder is reused; its cache is not there
    process = cluster.ingest("survived")
    stderr = Lines(process)
    stderr.wait_for(r"^ingest: embed: [1-9]\d*/", INGEST_TIMEOUT_S)  # batches done, others in flight
    cluster.kill(r"[r]aylet/raylet --raylet_socket_name=\S*/raylet\.2 ")  # the second worker node
    stdout = stderr.finish(process, INGEST_TIMEOUT_S)
    assert process.returncode == 0, stderr.text()[-4000:]
    assert stdout.startswith("indexed ") and stdout.count("\n") == 1, stdout[-2000:]
    assert_same_index(cluster.work / "survived", reference)
    engine = json.loads((cluster.work / "survived" / "manifest.json").read_text(encoding="utf-8"))["engine"]
    assert (engine["nodes"], engine["cpus"]) == (3, 3)  # the cluster as the ingest started
    assert engine["during"]["nodes_lost"] == 1
    assert cluster.encoder_copies() == []  # not even the killed node's actors'


def test_the_head_killed_mid_embedding_is_one_line_and_leaves_the_old_index(cluster: Cluster, reference: Path) -> None:
    index = cluster.work / "headless"
    shutil.copytree(reference, index)
    before = tree_digest(index)
    # Two workers: the cluster may have lost a node to the test before.
    process = cluster.ingest("headless", "--workers", "2")
    stderr = Lines(process)
    stderr.wait_for(r"^ingest: embed: 0/", INGEST_TIMEOUT_S)
    time.sleep(2)
    cluster.kill("[g]cs_server")
    cluster.kill(r"[r]aylet/raylet .* --head ")
    killed = time.monotonic()
    stdout = stderr.finish(process, 60)
    seconds = time.monotonic() - killed
    assert process.returncode == 2, stderr.text()[-4000:]
    # The driver may die with the head at once, or wait on it: then the CLI, watching the head's
    # port every 2 s, gives up once it has been refused for 5 s.
    assert seconds < 15, f"{seconds:.1f} s after the head was killed"
    lines = own_lines(stderr.text())
    assert len(lines) == 1 and lines[0].startswith("citeqa: error: the Ray cluster at 127.0.0.1:6379 failed"), lines
    assert "stopped answering" in lines[0] and ".headless.ray.log" in lines[0]
    assert stdout == ""
    assert tree_digest(index) == before
    assert leftovers(index) == []
