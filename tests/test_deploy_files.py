"""The Dockerfile stays honest: same install and ingest commands as the Makefile, non-root, health-checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")


def run_lines() -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line[4:] for line in joined.splitlines() if line.startswith("RUN ")]


def make_recipe(target: str) -> list[str]:
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
    assert match, target
    return [line.strip() for line in match.group(1).splitlines()]


def test_dockerfile_installs_and_ingests_through_the_makefile() -> None:
    runs = run_lines()
    assert any(r.startswith("make install") for r in runs)
    assert "make index" in runs
    # Nothing installs or ingests behind the Makefile's back.
    assert not any("pip install" in r or "citeqa ingest" in r for r in runs)
    assert any("citeqa ingest" in line for line in make_recipe("index"))
    assert any("torch==2.13.0" in line for line in make_recipe("$(VENV)/.installed"))


def test_dockerfile_runs_as_non_root_with_a_readiness_healthcheck() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*?/readyz", re.sub(r"\\\n\s*", " ", DOCKERFILE), re.M)
    assert re.search(r"^EXPOSE 8000$", DOCKERFILE, re.M)


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
