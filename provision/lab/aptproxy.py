"""apt-cacher-ng on a lab bridge's address: the hosts' only way to packages.

policy-rc.d keeps the package from starting it, so the lab runs its own copy
in the foreground with a config of its own, and knows it by recorded PID.
The nspawn lab has one on its bridge (`of_lab`), the VM lab another on the
VMs' network (provision/lab/vm/), each with its own folder and cache.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from . import layout, network
from .system import LabError, alive, read_pid, spawn, terminate

BINARY = "/usr/sbin/apt-cacher-ng"


@dataclass(frozen=True)
class Proxy:
    """The lab's apt proxy: its folder and the address it listens on."""
    folder: Path        # config, cache, logs and PID file
    bridge: str         # must exist, with `address` on it, before the proxy starts
    address: str        # where hosts reach it
    bind: str           # apt-cacher-ng's BindAddress


def of_lab(cache: Path) -> Proxy:
    """The nspawn lab's proxy: on its bridge and on loopback."""
    return Proxy(cache / "apt-cacher-ng", layout.BRIDGE, layout.BRIDGE_ADDRESS, f"{layout.BRIDGE_ADDRESS} 127.0.0.1")


def pid(proxy: Proxy) -> int | None:
    found = read_pid(proxy.folder / "pid")
    return found if alive(found, "apt-cacher-ng") else None


def ensure(proxy: Proxy) -> int:
    """Start apt-cacher-ng unless it already runs; the bridge must exist first
    (otherwise it silently listens on 127.0.0.1 only)."""
    if not network.bridge_exists(proxy.bridge):
        raise LabError(f"the bridge {proxy.bridge} must exist before the apt proxy starts")
    running = pid(proxy)
    if running and _answers(proxy):
        return running
    if running:
        terminate([running])
    top = proxy.folder
    conf = top / "conf"
    for sub in (conf, top / "cache", top / "log"):
        sub.mkdir(parents=True, exist_ok=True)
    (conf / "acng.conf").write_text(layout.apt_cacher_conf(top / "cache", top / "log", bind=proxy.bind))
    spawn([BINARY, "-c", str(conf)], top / "pid", top / "log" / "stdout.log")
    deadline = time.monotonic() + 15
    while not _answers(proxy):
        if time.monotonic() > deadline:
            raise LabError(f"apt-cacher-ng did not listen on {proxy.address}:"
                           f"{layout.APT_PROXY_PORT}; see {top / 'log'}")
        time.sleep(0.05)
    return read_pid(top / "pid")


def stop(proxy: Proxy) -> None:
    running = pid(proxy)
    if running:
        terminate([running])
    (proxy.folder / "pid").unlink(missing_ok=True)


def _answers(proxy: Proxy) -> bool:
    try:
        with socket.create_connection((proxy.address, layout.APT_PROXY_PORT), timeout=0.5):
            return True
    except OSError:
        return False
