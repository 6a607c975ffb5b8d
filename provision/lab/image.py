"""The read-only Debian base image every host's overlay sits on.

Built once with debootstrap, packed as tar.zst in the cache folder, and
unpacked from there when the unpacked copy is missing. It holds no key of any
checkout and no host keys: those go into each host's own layer.
"""
from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path

from . import layout
from .system import LabError, check_free_space, run

# Bump when the base's recipe changes, so caches of the old recipe are not reused.
VERSION = 1
INCLUDE = ("systemd,systemd-sysv,dbus,libpam-systemd,openssh-server,iproute2,"
           "python3,curl,ca-certificates,sudo,procps")
SSHD_CONF = "# Host keys are generated per host by the lab.\nHostKey /etc/ssh/ssh_host_ed25519_key\n"


def paths(cache: Path, suite: str = layout.SUITE) -> tuple[Path, Path]:
    """(unpacked base folder, packed tar.zst) of one Debian release."""
    name = f"base-{suite}-v{VERSION}"
    return cache / name, cache / f"{name}.tar.zst"


def ensure(cache: Path, log, suite: str = layout.SUITE) -> Path:
    """The unpacked base folder of `suite`, building or unpacking it when needed.

    Needs no running lab: each release's image has its own lock, so images can be
    built ahead of time, also while another release's image builds or the lab runs."""
    base, packed = paths(cache, suite)
    if (base / ".complete").exists():
        return base
    check_free_space(cache, 2.0)
    with open(cache / f"{base.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / ".complete").exists():
            _unpack(base, packed, suite, log)
    return base


def _unpack(base: Path, packed: Path, suite: str, log) -> None:
    if not packed.exists():
        build(packed, suite, log)
    log(f"Unpacking base image {packed.name}")
    tmp = base.with_name(base.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)
    tmp.mkdir(parents=True)
    run(["tar", "-C", str(tmp), "--numeric-owner", "--xattrs", "--xattrs-include=*",
         "-I", "zstd -T0", "-xpf", str(packed)])
    (tmp / ".complete").write_text("")
    tmp.rename(base)


def build(packed: Path, suite: str, log) -> None:
    sources = layout.parse_sources(_machine_sources())
    try:
        uri = layout.mirror(sources, suite)
    except ValueError:
        raise LabError("no apt source for a Debian release in /etc/apt/sources.list.d/*.sources; add one") from None
    root = packed.with_name(packed.name + ".build")
    shutil.rmtree(root, ignore_errors=True)
    log(f"Building the {suite} base image with debootstrap from {uri} (about a minute, once)")
    start = time.monotonic()
    run(["debootstrap", "--variant=minbase", f"--include={INCLUDE}", suite, str(root), uri])
    configure(root, sources, suite)
    tmp = packed.with_name(packed.name + ".tmp")
    run(["tar", "-C", str(root), "--numeric-owner", "--xattrs", "--xattrs-include=*",
         "-I", "zstd -T0 -3", "-cpf", str(tmp), "."])
    tmp.rename(packed)
    shutil.rmtree(root)
    log(f"Base image built in {time.monotonic() - start:.0f} s: {packed}")


def configure(root: Path, sources: list[layout.Source], suite: str) -> None:
    """Make the debootstrapped tree a base: apt sources, networkd, no keys, no package lists."""
    (root / "etc/apt/sources.list").write_text(layout.sources_list(sources, suite))
    confs = {p.name: p.read_text() for p in Path("/etc/apt/apt.conf.d").iterdir() if p.is_file()}
    for name, text in layout.mirror_apt_conf(confs).items():
        (root / "etc/apt/apt.conf.d" / name).write_text(text)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/ssh/sshd_config.d/lab.conf").write_text(SSHD_CONF)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    for name in ("etc/hostname", "etc/machine-id"):
        (root / name).write_text("")
    run(["chroot", str(root), "systemctl", "enable", "systemd-networkd"])
    run(["chroot", str(root), "apt-get", "clean"])
    # Hosts start "as after a new install": no package lists, so the first
    # deploy must run apt-get update (lists less than an hour old would skip it).
    lists = root / "var/lib/apt/lists"
    for entry in lists.iterdir():
        if entry.is_file():
            entry.unlink()


def _machine_sources() -> str:
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    return "\n\n".join(f.read_text() for f in files)
