"""The VM lab, for real: lab.up --provider vagrant, deploy, verify, a no-op deploy, lab.down.

Three emulated VMs on a 2-core machine: with the box cached this takes several minutes, so it is
marked `vm` as well as `lab`; skip it with `-m "not vm"` (docs/lab.md). It does not use the nspawn
lab (nor its lock): the VMs have their own network, subnet and apt proxy.
"""
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import invoke, recap

from provision.lab.system import cache_dir, ensure_packages
from provision.lab.vm import api, layout, libvirt

pytestmark = [pytest.mark.lab, pytest.mark.vm]

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "inventory/vagrant.yml"
FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def ssh(host, command):
    return subprocess.run(["ssh", "-F", str(ROOT / ".lab/vagrant/ssh_config"), "-o", "BatchMode=yes", host, command],
                          capture_output=True, text=True, timeout=120)


def timed(figures, what, *args, timeout):
    start = time.monotonic()
    proc = invoke(*args, timeout=timeout)
    figures[what] = time.monotonic() - start
    print(f"{what}: {figures[what]:.0f} s (exit {proc.returncode})")
    assert proc.returncode == 0, f"invoke {' '.join(args)} exited {proc.returncode}:\n" \
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_vm_lab_up_deploy_verify_twice_then_down_leaves_nothing():
    if os.geteuid() != 0:
        pytest.skip("the VM lab needs root (libvirt, apt)")
    figures = {}
    start = time.monotonic()
    # What libvirt holds before the lab: the packages and a daemon are needed to ask it.
    ensure_packages(print, libvirt.PACKAGES, "the VM lab needs")
    state = api.state_dir(cache_dir())
    libvirt.ensure_daemon(state, print)
    before = libvirt.snapshot()
    forward = FORWARD.read_text()
    figures["packages and libvirt"] = time.monotonic() - start
    print(f"before: {before}")
    try:
        up = timed(figures, "lab.up --provider vagrant", "lab.up", "--provider", "vagrant", timeout=1500)
        stages = [line for line in up.stdout.splitlines() if line.startswith(("[", "VM lab", "lab.up took"))]
        print("\n".join(stages))
        assert any(line.startswith("[vagrant up: ") for line in stages)
        assert FORWARD.read_text() == forward == "0\n"      # isolated: no forwarding turned on
        domains = libvirt.snapshot().domains
        assert {m.domain for m in layout.plan()} <= set(domains)
        assert ssh("web1", "command -v python3").returncode == 1       # the box has no Python

        first = timed(figures, "first deploy", "deploy", "-i", INVENTORY, timeout=1500)
        assert set(recap(first.stdout)) == {"proxy", "web1", "web2"}
        assert all(r["failed"] == 0 for r in recap(first.stdout).values())
        timed(figures, "verify", "verify", "-i", INVENTORY, timeout=900)
        second = timed(figures, "second deploy", "deploy", "-i", INVENTORY, timeout=900)
        assert {h: r["changed"] for h, r in recap(second.stdout).items()} == dict.fromkeys(("proxy", "web1", "web2"), 0)
    finally:
        down = invoke("lab.down", "--provider", "vagrant", timeout=900)
        print(f"lab.down --provider vagrant: exit {down.returncode}")
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    figures["total"] = time.monotonic() - start
    print("VM lab test: " + ", ".join(f"{what} {s:.0f} s" for what, s in figures.items()))

    libvirt.ensure_daemon(state, print)          # lab.down stopped the daemon it had started
    try:
        assert libvirt.snapshot() == before
    finally:
        libvirt.stop_daemon(state)
    assert FORWARD.read_text() == forward
    assert not Path("/sys/class/net", layout.BRIDGE).exists()
    assert not (ROOT / ".lab/vagrant/ssh_config").exists()
