"""The lab's private bridge on the machine (no forwarding, no NAT)."""
from __future__ import annotations

from pathlib import Path

from . import layout
from .system import run


def bridge_exists(name: str = layout.BRIDGE) -> bool:
    return Path("/sys/class/net", name).exists()


def ensure_bridge() -> None:
    """Create the bridge with its address, or reuse one left behind."""
    name, cidr = layout.BRIDGE, f"{layout.BRIDGE_ADDRESS}/{layout.PREFIX}"
    if not bridge_exists(name):
        run(["ip", "link", "add", name, "type", "bridge"])
    addrs = run(["ip", "-o", "-4", "addr", "show", "dev", name]).stdout
    if f" {cidr} " not in addrs:
        run(["ip", "addr", "add", cidr, "dev", name])
    run(["ip", "link", "set", name, "up"])


def remove_bridge() -> None:
    if bridge_exists():
        run(["ip", "link", "del", layout.BRIDGE], check=False)


def host_link(host: str) -> str:
    """The machine's end of a host's veth, as systemd-nspawn --network-bridge names it."""
    return f"vb-{host}"[:15]


def remove_link(name: str) -> None:
    """Remove a stale veth end (vb-NAME) a killed container left on the machine."""
    if Path("/sys/class/net", name).exists():
        run(["ip", "link", "del", name], check=False)
