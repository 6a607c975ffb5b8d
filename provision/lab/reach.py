"""Talking to lab hosts with the real ssh client and .lab/ssh_config."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .system import LabError

SSH_FAILED = 255  # ssh's own exit status when it could not connect


def ssh(config: Path, host: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    argv = ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=2", host, command]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, SSH_FAILED, "", "timed out")


def system_state(config: Path, host: str) -> str | None:
    """`systemctl is-system-running` of a host, or None when ssh cannot get in."""
    proc = ssh(config, host, "systemctl is-system-running", timeout=10)
    return None if proc.returncode == SSH_FAILED else proc.stdout.strip()


def wait_ready(config: Path, host: str, timeout: float, still_alive, strict: bool = True) -> None:
    """Poll until ssh gets in and the host has finished booting.

    strict: only `running` will do (a fresh boot); otherwise `degraded` is
    accepted too (a host that was already up, whose units are someone else's).
    """
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not still_alive():
            raise LabError(f"{host}: its container stopped while booting")
        proc = ssh(config, host, "systemctl is-system-running --wait", timeout=max(1, deadline - time.monotonic()))
        state = proc.stdout.strip()
        if proc.returncode != SSH_FAILED:
            if state == "running" or (state == "degraded" and not strict):
                return
            if state == "degraded":
                failed = ssh(config, host, "systemctl --failed --plain --no-legend").stdout.split("\n")
                raise LabError(f"{host}: booted degraded, failed units: {'; '.join(f for f in failed if f)}")
        last = ((proc.stderr or state).strip().splitlines() or [""])[-1]
        time.sleep(0.2)
    raise LabError(f"{host}: not ready after {timeout:.0f} s (last: {last})")
