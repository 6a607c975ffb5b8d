"""apt-cacher-ng on the bridge address: the hosts' only way to packages.

policy-rc.d keeps the package from starting it, so the lab runs its own copy
in the foreground with a config of its own, and knows it by recorded PID.
"""
from __future__ import annotations

import socket
import time
from pathlib import Path

from . import layout, network
from .system import LabError, alive, read_pid, spawn, terminate

BINARY = "/usr/sbin/apt-cacher-ng"


def folder(cache: Path) -> Path:
    return cache / "apt-cacher-ng"


def pid(cache: Path) -> int | None:
    found = read_pid(folder(cache) / "pid")
    return found if alive(found, "apt-cacher-ng") else None


def ensure(cache: Path) -> int:
    """Start apt-cacher-ng unless it already runs; the bridge must exist first
    (otherwise it silently listens on 127.0.0.1 only)."""
    if not network.bridge_exists():
        raise LabError("the lab bridge must exist before the apt proxy starts")
    running = pid(cache)
    if running and _answers():
        return running
    if running:
        terminate([running])
    top = folder(cache)
    conf = top / "conf"
    for sub in (conf, top / "cache", top / "log"):
        sub.mkdir(parents=True, exist_ok=True)
    (conf / "acng.conf").write_text(layout.apt_cacher_conf(top / "cache", top / "log"))
    spawn([BINARY, "-c", str(conf)], top / "pid", top / "log" / "stdout.log")
    deadline = time.monotonic() + 15
    while not _answers():
        if time.monotonic() > deadline:
            raise LabError(f"apt-cacher-ng did not listen on {layout.BRIDGE_ADDRESS}:"
                           f"{layout.APT_PROXY_PORT}; see {top / 'log'}")
        time.sleep(0.05)
    return read_pid(top / "pid")


def stop(cache: Path) -> None:
    running = pid(cache)
    if running:
        terminate([running])
    (folder(cache) / "pid").unlink(missing_ok=True)


def _answers() -> bool:
    try:
        with socket.create_connection((layout.BRIDGE_ADDRESS, layout.APT_PROXY_PORT), timeout=0.5):
            return True
    except OSError:
        return False
