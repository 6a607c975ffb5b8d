"""libvirt on this machine: its daemons, the lab's network, pool and domains, and the KVM probe.

The machine has no systemd as PID 1 and policy-rc.d keeps packages from
starting services, so when no libvirt daemon answers, the lab starts
`virtlogd` and `libvirtd` itself and knows them by recorded PID. Everything
the lab defines in libvirt carries the lab's names (layout.NETWORK,
layout.POOL, layout.PREFIX), so `down` removes exactly that and nothing else.
"""
from __future__ import annotations

import grp
import os
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..system import LabError, alive, check_free_space, read_pid, run, spawn, terminate
from . import layout

URI = "qemu:///system"
# Debian packages the VM lab needs on this machine: dnsmasq-base for the network's DHCP,
# apt-cacher-ng for the VMs' packages; debootstrap and zstd build and unpack the base tree the
# box starts from (when the nspawn lab has not yet).
PACKAGES = ("vagrant", "vagrant-libvirt", "libvirt-daemon-system", "libvirt-clients", "dnsmasq-base",
            "qemu-system-x86", "qemu-utils", "e2fsprogs", "apt-cacher-ng", "debootstrap", "zstd",
            "openssh-client")
DAEMONS = ("virtlogd", "libvirtd")
DAEMON_TIMEOUT = 30
KVM_PROBE_SECONDS = 15


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["virsh", "-q", "-c", URI, *args], check=check, timeout=120)


# --- the daemons ------------------------------------------------------------------------------------

def answers() -> bool:
    try:
        return virsh("version", check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_daemon(state: Path, log) -> None:
    """A libvirt daemon that answers, started here (virtlogd, then libvirtd) when none does."""
    if answers():
        return
    state.mkdir(parents=True, exist_ok=True)
    for name in DAEMONS:
        if _daemon_pid(state, name):
            continue
        log(f"Starting {name}")
        spawn([f"/usr/sbin/{name}"], state / f"{name}.pid", state / f"{name}.log")
    deadline = time.monotonic() + DAEMON_TIMEOUT
    while not answers():
        if not _daemon_pid(state, "libvirtd"):
            raise LabError(f"no libvirt daemon: libvirtd stopped at once (see {state / 'libvirtd.log'})")
        if time.monotonic() > deadline:
            raise LabError(f"no libvirt daemon: libvirtd did not answer on {URI} within {DAEMON_TIMEOUT} s "
                           f"(see {state / 'libvirtd.log'})")
        time.sleep(0.2)


def stop_daemon(state: Path) -> None:
    """Stop the daemons the lab started (none that were running before it), when no domain runs."""
    pids = [p for p in (_daemon_pid(state, name) for name in DAEMONS) if p]
    if not pids:
        return
    if answers() and virsh("list", "--name").stdout.strip():
        return      # someone's VMs still run on it
    terminate(pids)
    for name in DAEMONS:
        (state / f"{name}.pid").unlink(missing_ok=True)


def _daemon_pid(state: Path, name: str) -> int | None:
    found = read_pid(state / f"{name}.pid")
    return found if alive(found, name) else None


# libvirt probes QEMU with KVM enabled, then checks that its QEMU user (libvirt-qemu, group kvm)
# may open /dev/kvm. On a machine without udev, /dev/kvm stays root:root 0600: the two answers
# disagree, so libvirt judges its probe outdated and probes again on every domain define or start
# (about 4 s each, 48 s per define seen here). Debian's udev rule makes it root:kvm 0660; the lab
# does the same while it runs, and `down` puts back what it found. (The probe only asks QEMU what
# it supports; no guest runs under KVM unless the domain type is kvm.)
KVM_DEVICE = Path("/dev/kvm")


def grant_kvm_group(state: Path, log) -> None:
    if not KVM_DEVICE.exists():
        return
    kvm_gid = grp.getgrnam("kvm").gr_gid
    st = KVM_DEVICE.stat()
    if st.st_gid == kvm_gid and st.st_mode & 0o060 == 0o060:
        return
    record = state / "kvm-device"
    if not record.exists():
        state.mkdir(parents=True, exist_ok=True)
        record.write_text(f"{st.st_uid} {st.st_gid} {stat.S_IMODE(st.st_mode):o}\n")
    log(f"{KVM_DEVICE}: group kvm, mode 0660 (as Debian's udev rule sets it), while the VM lab runs")
    os.chown(KVM_DEVICE, st.st_uid, kvm_gid)
    os.chmod(KVM_DEVICE, 0o660)


def restore_kvm_device(state: Path) -> None:
    record = state / "kvm-device"
    if not record.exists():
        return
    uid, gid, mode = record.read_text().split()
    if KVM_DEVICE.exists():
        os.chown(KVM_DEVICE, int(uid), int(gid))
        os.chmod(KVM_DEVICE, int(mode, 8))
    record.unlink()


# --- the network, pool and domains ------------------------------------------------------------------

def _names(*args: str) -> list[str]:
    return [n for n in virsh(*args, "--name").stdout.split() if n]


def ensure_network(xml: str) -> None:
    if layout.NETWORK not in _names("net-list", "--all"):
        _define("net-define", xml)
    if layout.NETWORK not in _names("net-list"):
        virsh("net-start", layout.NETWORK)


def ensure_pool(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if layout.POOL not in _names("pool-list", "--all"):
        _define("pool-define", layout.pool_xml(path))
    if layout.POOL not in _names("pool-list"):
        virsh("pool-start", layout.POOL)
    virsh("pool-refresh", layout.POOL)


def _define(command: str, xml: str) -> None:
    proc = subprocess.run(["virsh", "-q", "-c", URI, command, "/dev/stdin"], input=xml, capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise LabError(f"virsh {command} failed: {proc.stderr.strip()}")


def lab_domains() -> list[str]:
    """The lab's domains that libvirt knows, running or not."""
    return [n for n in _names("list", "--all") if n.startswith(layout.PREFIX)]


def domain_uuid(name: str) -> str | None:
    proc = virsh("domuuid", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def remove_domain(name: str) -> None:
    """Stop and undefine one of the lab's domains (its disk goes with the pool's volumes)."""
    if not name.startswith(layout.PREFIX):
        raise ValueError(f"{name} is not one of the lab's domains")
    if name in _names("list"):
        virsh("destroy", name, check=False)
    virsh("undefine", name, check=False)


def remove_volumes(match=lambda name: True) -> list[str]:
    """Delete the lab pool's volumes whose names `match`; returns their names."""
    if layout.POOL not in _names("pool-list"):
        return []
    virsh("pool-refresh", layout.POOL)
    removed = []
    for line in virsh("vol-list", layout.POOL).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name and match(name):
            virsh("vol-delete", "--pool", layout.POOL, name)
            removed.append(name)
    return removed


def remove_network() -> None:
    if layout.NETWORK in _names("net-list"):
        virsh("net-destroy", layout.NETWORK)
    if layout.NETWORK in _names("net-list", "--all"):
        virsh("net-undefine", layout.NETWORK)


def remove_pool() -> None:
    remove_volumes()
    if layout.POOL in _names("pool-list"):
        virsh("pool-destroy", layout.POOL)
    if layout.POOL in _names("pool-list", "--all"):
        virsh("pool-undefine", layout.POOL)


@dataclass(frozen=True)
class Snapshot:
    """What libvirt holds: domains, networks, and each active pool's volumes."""
    domains: tuple[str, ...]
    networks: tuple[str, ...]
    volumes: tuple[str, ...]        # "pool/volume"


def snapshot() -> Snapshot:
    volumes = []
    for pool in _names("pool-list"):
        volumes += [f"{pool}/{line.split()[0]}" for line in virsh("vol-list", pool).stdout.splitlines() if line.split()]
    return Snapshot(tuple(sorted(_names("list", "--all"))), tuple(sorted(_names("net-list", "--all"))),
                    tuple(sorted(volumes)))


# --- room and speed ---------------------------------------------------------------------------------

def check_room(machines: int, pool: Path) -> None:
    """One line when the machine lacks the memory or disk for the VMs."""
    need_mb = machines * layout.ROOM_MB_PER_VM
    available = _mem_available_mb()
    if available < need_mb:
        raise LabError(f"no room for the VMs: {available / 1000:.1f} GB of memory available, {machines} VMs "
                       f"of {layout.MEMORY_MB} MB need about {need_mb / 1000:.1f} GB; stop something or "
                       "use the nspawn lab (invoke lab.up)")
    try:
        check_free_space(pool, layout.ROOM_DISK_GB)
    except LabError as e:
        raise LabError(f"no room for the VMs: {e}") from None


def _mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def kvm_usable(kernel: Path, state: Path, log) -> bool:
    """Whether KVM really runs guests here: boot the box's kernel with -enable-kvm and no disk, and
    see it reach its root-mount panic within KVM_PROBE_SECONDS (here a KVM guest stalls before its
    first line). The answer is kept until the machine reboots."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        log("KVM: no usable /dev/kvm, so the VMs run under emulation (libvirt domain type qemu)")
        return False
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    record = state / "kvm-probe"
    if record.exists():
        saved_boot, _, verdict = record.read_text().strip().partition(" ")
        if saved_boot == boot_id:
            return verdict == "usable"
    start = time.monotonic()
    argv = ["qemu-system-x86_64", "-enable-kvm", "-m", "128", "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=KVM_PROBE_SECONDS,
                              stdin=subprocess.DEVNULL)
        console = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:      # run() has killed it
        console = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    usable = layout.kvm_probe_passed(console)
    seconds = time.monotonic() - start
    log(f"KVM probe ({seconds:.1f} s): " + ("a guest boots, the VMs use KVM" if usable else
        f"a guest did not reach its first panic in {KVM_PROBE_SECONDS} s, the VMs run under emulation "
        "(libvirt domain type qemu)"))
    state.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{boot_id} {'usable' if usable else 'stalls'}\n")
    return usable
