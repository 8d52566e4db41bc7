"""Where a benchmark ran: figures move with the CPU (the int8 kernels with and without VNNI)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

# The instruction sets whose presence changes what the query encoder and FAISS run.
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")


def cpu_description(cpuinfo: str) -> tuple[str, list[str]]:
    """The model name and which of FLAGS a /proc/cpuinfo text lists (its first processor)."""
    model, flags = "", set[str]()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model or platform.processor() or "unknown", [f for f in FLAGS if f in flags]


def describe_machine() -> dict[str, Any]:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        cpuinfo = ""
    model, flags = cpu_description(cpuinfo)
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "cpu_model": model,
        "cpu_flags": flags,
    }


def machine_line(machine: dict[str, Any]) -> str:
    """One line for a report: '2 CPUs (AMD EPYC; avx2, avx512f, avx512_vnni), Python 3.11.7'."""
    flags = ", ".join(machine.get("cpu_flags") or []) or "none of " + "/".join(FLAGS)
    return f"{machine['cpus']} CPUs ({machine.get('cpu_model', 'unknown')}; {flags}), Python {machine['python']}"
