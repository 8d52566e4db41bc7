"""A private network, PID and mount namespace for a real multi-node Ray cluster on loopback.

Ray binds to the machine's own address even when told 127.0.0.1, so a cluster of `ray start`
processes stays on loopback only inside a network namespace of its own; in a PID namespace too,
`ray stop --force` there sees (and kills) only that cluster, never another Ray on the machine, and
when the namespace's first process dies the kernel kills every process left inside.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

# The namespace's first process: loopback up, then a shell that waits (and reaps orphans) until killed.
HOLDER = "ip link set lo up && echo ready && while :; do sleep 1 & wait $!; done"


def namespace_reason() -> str | None:
    """Why a private namespace cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root for `unshare` (a private network namespace keeps Ray on loopback)"
    if not all(shutil.which(tool) for tool in ("unshare", "nsenter", "ip")):
        return "needs `unshare`, `nsenter` and `ip` (util-linux, iproute2) for a private network namespace"
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return f"`unshare -n` is not allowed here: {probe.stderr.decode(errors='replace').strip()}"
    return None


class Namespace:
    """`unshare -n bash -c 'ip link set lo up; ...'`, held open so that commands can enter it one at a time."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child", "bash", "-c", HOLDER],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._holder.stdout is not None
        if self._holder.stdout.readline().strip() != "ready":
            raise RuntimeError("the namespace did not start")
        children = Path(f"/proc/{self._holder.pid}/task/{self._holder.pid}/children").read_text().split()
        self._inside = int(children[0])  # the shell that is the namespace's first process

    def command(self, *args: str) -> list[str]:
        return ["nsenter", f"--target={self._inside}", "--net", "--pid", "--mount", f"--wd={self.cwd}", "--", *args]

    def run(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command("bash", "-c", script), env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def start(self, script: str, **options: Any) -> subprocess.Popen[str]:
        """A script in the background, printing its pid inside the namespace first, on stderr, for
        `signal` (a signal to nsenter would not reach it): the script `exec`s its last command."""
        return subprocess.Popen(
            self.command("bash", "-c", f'echo "pid $$" >&2\n{script}'),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **options,
        )

    def signal(self, pid: int, signum: int) -> None:
        self.run(f"kill -{signal.Signals(signum).name.removeprefix('SIG')} {pid}", timeout=30)

    def close(self) -> None:
        try:
            self.run("ray stop --force", timeout=60)
        finally:
            self._holder.kill()  # --kill-child: the namespace's first process, and so all in it, dies too
            self._holder.wait(timeout=30)
