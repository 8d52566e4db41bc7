"""The Dockerfile stays honest: the build stage installs and ingests through the Makefile, the
final stage serves from a venv without torch, as a non-root user, health-checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")


def stages() -> list[list[str]]:
    """Each stage's instructions, continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found: list[list[str]] = []
    for line in joined.splitlines():
        if line.startswith("FROM "):
            found.append([])
        if line.strip() and not line.startswith("#"):
            found[-1].append(line)
    return found


def instructions(stage: list[str], keyword: str) -> list[str]:
    return [line[len(keyword) + 1 :] for line in stage if line.startswith(keyword + " ")]


def make_recipe(target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert match, target
    return [line.strip() for line in match.group(1).splitlines()]


def test_build_stage_installs_and_ingests_through_the_makefile() -> None:
    build, *_ = stages()
    runs = " && ".join(instructions(build, "RUN"))
    commands = [c.strip() for c in runs.split("&&")]
    assert any(c.startswith("make install TORCH_PIP_ARGS=") for c in commands)
    assert any(re.fullmatch(r"make install-serve VENV=\S+", c) for c in commands)
    assert "make index" in commands
    assert any(c.startswith("apt-get install") and " make=" in c for c in commands)
    # Nothing installs or ingests behind the Makefile's back.
    assert "pip install" not in runs and "citeqa ingest" not in runs
    assert any("citeqa ingest" in line for line in make_recipe("index"))
    install = make_recipe("$(VENV)/.installed")
    assert any("torch==2.13.0" in line for line in install)
    assert any('-e ".[ingest]"' in line for line in install)


def test_final_stage_holds_the_serve_only_venv_and_the_index() -> None:
    *_, final = stages()
    assert instructions(final, "FROM")[0].startswith("python:3.11.7-slim-bookworm")
    serve_venv = re.search(r"make install-serve VENV=(\S+)", DOCKERFILE)
    assert serve_venv
    # `make install-serve` is `pip install .` with the lock: no extra, so no torch.
    serve_install = [line for line in make_recipe("install-serve") if "pip install" in line]
    assert serve_install and all(line.endswith(" -c requirements.lock .") for line in serve_install)
    copies = instructions(final, "COPY")
    assert sorted(copies) == sorted(
        [f"--from=ingest {serve_venv.group(1)} {serve_venv.group(1)}", "--from=ingest /app/index /app/index"]
    )
    # No make, no pip in the final stage: only the user is added.
    assert [run.split()[0] for run in instructions(final, "RUN")] == ["useradd"]
    assert any(line.startswith(f"ENV PATH={serve_venv.group(1)}/bin:") for line in final)


def test_final_stage_runs_as_non_root_with_a_readiness_healthcheck() -> None:
    *_, final = stages()
    assert instructions(final, "USER") == ["10001"]
    assert "--uid 10001" in instructions(final, "RUN")[0]
    # COPY without --chown: the code, venv and index belong to root, read-only to uid 10001.
    assert not any("--chown" in copy for copy in instructions(final, "COPY"))
    assert re.search(r"^--interval=\S+ .*/readyz", instructions(final, "HEALTHCHECK")[0])
    assert instructions(final, "EXPOSE") == ["8000"]
    assert instructions(final, "CMD") == ['["citeqa", "serve"]']


def test_package_sources_are_build_args() -> None:
    # The legacy builder ignores a `# syntax=` line; BuildKit would fetch a frontend and fail offline.
    assert not re.search(r"^#\s*syntax=", DOCKERFILE, re.M)
    build, *_ = stages()
    declared = {arg.split("=")[0] for arg in instructions(build, "ARG")}
    assert {"PIP_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "TORCH_PIP_ARGS"} <= declared
    # `make docker` passes only declared args, and reads the wheelhouse over loopback.
    docker = " ".join(make_recipe("docker"))
    passed = set(re.findall(r"--build-arg (\w+)=", docker))
    assert passed and passed <= declared
    assert "--network host" in docker and "--bind 127.0.0.1" in docker
    assert "wheelhouse/" in (REPO / ".gitignore").read_text(encoding="utf-8").split()
    assert "wheelhouse" in (REPO / ".dockerignore").read_text(encoding="utf-8").split()


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
