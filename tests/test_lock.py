"""requirements.lock resolves with plain PyPI, not only on a machine with a local wheel cache."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest

from tests.conftest import REPO

LOCK = REPO / "requirements.lock"
RESOLVE_TIMEOUT_S = 300  # measured: 35–45 s here (pip fetches every wheel, torch's CUDA ones too)


def test_lock_pins_public_versions_only() -> None:
    # `torch==2.13.0+cpu` exists only on the PyTorch index (or a local wheel cache); PyPI has
    # `2.13.0`. A public pin still matches the local build where one is installed (PEP 440).
    pins = [line for line in LOCK.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.]*", pin) for pin in pins), [
        pin for pin in pins if "+" in pin or "==" not in pin
    ]


def test_every_pin_runs_on_the_oldest_python_the_project_allows() -> None:
    # The image's Python may be older than this machine's (a Debian 3.11.2 base refused
    # soupsieve 4.x, which wants 3.11.5): every pin installed here must admit the lowest Python
    # that pyproject.toml's requires-python allows, read from the pin's own metadata.
    from packaging.specifiers import SpecifierSet

    allowed = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    oldest = re.search(r">=\s*([0-9.]+)", allowed)
    assert oldest, allowed
    floor = oldest[1] + ".0" * (2 - oldest[1].count("."))
    refused, checked = [], 0
    for pin in LOCK.read_text(encoding="utf-8").split():
        name, version = pin.split("==")
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # optional on this machine (uvloop, httptools); the registry test covers it
        checked += 1
        wants = dist.metadata["Requires-Python"]
        if dist.version == version and wants and floor not in SpecifierSet(wants):
            refused.append(f"{pin} requires Python {wants}")
    assert checked > 100 and not refused, refused


@pytest.mark.registry
def test_lock_resolves_with_plain_pypi() -> None:
    # --isolated ignores pip's config files and PIP_* variables (this machine's local wheel
    # cache and extra indexes): the resolver sees what a fresh machine sees, pypi.org alone.
    command = [
        sys.executable,
        *("-m", "pip", "install", "--dry-run", "--isolated", "--ignore-installed", "--quiet"),
        *("--disable-pip-version-check", "--timeout", "30", "--retries", "2"),
        *("-c", str(LOCK), "-e", f"{REPO}[dev]"),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail(f"pip did not resolve requirements.lock within {RESOLVE_TIMEOUT_S} s: is pypi.org reachable?")
    assert result.returncode == 0, "requirements.lock does not resolve with plain PyPI:\n" + "\n".join(
        (result.stdout + result.stderr).strip().splitlines()[-15:]
    )
