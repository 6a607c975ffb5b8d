"""The lab's Debian 12 libvirt box, built on this machine from Debian's packages.

It starts from the nspawn lab's cached base tree (provision/lab/image.py),
adds Debian's cloud kernel and an initramfs, a `vagrant` user who logs in with
the lab's own key (never Vagrant's well-known insecure one) and a unit that
makes each VM's host key on first boot; it removes Python. The tree becomes an
ext4 disk (`mkfs.ext4 -d`), then qcow2; the box boots that disk with the
kernel and initrd it carries (direct kernel boot, no boot loader).

The box file is cached in the lab's cache under the digest of its recipe
(provision/lab/vm/layout.py), so it is rebuilt only when the recipe changes,
and added to Vagrant (`vagrant box add`) under the name layout.BOX.
"""
from __future__ import annotations

import fcntl
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import image, vagrant
from ..system import LabError, check_free_space, ensure_key, run, unmount_below
from . import layout

BOX_FILES = ("metadata.json", "Vagrantfile", "box.img", "vmlinuz", "initrd.img")


@dataclass
class Box:
    """A built box: its image, digest and kernel."""
    path: Path          # the .box file in the cache
    digest: str
    kernel: Path        # the box's kernel, unpacked beside it (the KVM probe boots it)
    built_seconds: float | None = None   # None: taken from the cache


def folder(cache: Path) -> Path:
    """The VM lab's part of the lab cache."""
    return cache / "vm"


def key_path(cache: Path) -> Path:
    """The VM lab's ssh key: machine-wide like the box that carries its public half."""
    return folder(cache) / "key" / "id_ed25519"


def vagrant_home(cache: Path) -> Path:
    return folder(cache) / "vagrant.d"


def ensure(cache: Path, log) -> Box:
    """The box for the current recipe: from the cache, or built now (its build time is logged)."""
    top = folder(cache) / "boxes"
    top.mkdir(parents=True, exist_ok=True)
    key = key_path(cache)
    public = ensure_key(key, log)
    base = image.ensure(cache, log)
    digest = layout.digest(layout.recipe(public, key, base.name))
    path = top / f"debian12-{digest}.box"
    with open(top / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        seconds = None
        if not path.exists():
            check_free_space(top, layout.ROOM_DISK_GB)
            start = time.monotonic()
            build(base, public, key, path, log)
            seconds = time.monotonic() - start
            log(f"Box built in {seconds:.0f} s: {path.name}")
            for old in top.glob("debian12-*"):
                if not old.name.startswith(path.stem):
                    _remove(old)
        kernel = _unpack_kernel(path)
    return Box(path, digest, kernel, seconds)


def build(base: Path, public_key: str, key: Path, out: Path, log) -> None:
    """Build the box file `out` from the base tree; a failing step raises LabError with its last error line."""
    work = out.with_name(out.name + ".build")
    _remove(work)
    tree = work / "tree"
    tree.mkdir(parents=True)
    log(f"Building the box {layout.BOX} from {base.name} (Debian's cloud kernel, no Python)")
    try:
        _step("copy the base tree", ["cp", "-a", f"{base}/.", str(tree)])
        (tree / ".complete").unlink(missing_ok=True)
        _step("add the vagrant user", ["chroot", str(tree), "useradd", "-m", "-U", "-s", "/bin/bash", layout.USER])
        _write_files(tree, layout.guest_files(public_key))
        with _chroot_mounts(tree):
            apt = ["chroot", str(tree), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y"]
            _step("apt-get update", apt + ["update"])
            _step("install the kernel", apt + ["install", "--no-install-recommends", *layout.BOX_PACKAGES])
            _step("remove Python", apt + ["purge", "--autoremove", *layout.BOX_PURGE])
            _step("enable the host-key unit", ["chroot", str(tree), "systemctl", "enable", "provision-host-key.service"])
            _step("apt-get clean", apt + ["clean"])
        _clean_tree(tree)
        _copy_boot_files(tree, work)
        disk = work / "disk.raw"
        _step("make the ext4 disk", ["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree), str(disk),
                                     f"{layout.DISK_GB}G"])
        _step("convert the disk to qcow2", ["qemu-img", "convert", "-O", "qcow2", str(disk), str(work / "box.img")])
        disk.unlink()
        (work / "metadata.json").write_text(layout.box_metadata())
        (work / "Vagrantfile").write_text(layout.box_vagrantfile(key))
        tmp = out.with_name(out.name + ".tmp")
        _step("pack the box", ["tar", "-C", str(work), "-cf", str(tmp), *BOX_FILES])
        tmp.rename(out)
    finally:
        unmount_below(tree)
        _remove(work)


def _step(what: str, argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        last = next((line for line in reversed(lines) if line.startswith(("E:", "error", "Error"))),
                    lines[-1] if lines else f"exit status {proc.returncode}")
        raise LabError(f"the box build failed ({what}): {last.strip()}")


def _write_files(tree: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tree / "etc/sudoers.d/vagrant").chmod(0o440)
    ssh = tree / "home" / layout.USER / ".ssh"
    ssh.chmod(0o700)
    (ssh / "authorized_keys").chmod(0o600)
    run(["chroot", str(tree), "chown", "-R", f"{layout.USER}:{layout.USER}", f"/home/{layout.USER}/.ssh"])


@contextmanager
def _chroot_mounts(tree: Path):
    """/proc in the tree, and a policy-rc.d that keeps services from starting.

    Never the machine's /dev or /sys: package scripts in the tree would change them (udev's
    postinst gave the machine's /dev/kvm to the tree's kvm group). The tree's own /dev has the
    static nodes debootstrap made (null, zero, random, ...), which is all apt needs."""
    policy = tree / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    try:
        run(["mount", "-t", "proc", "proc", str(tree / "proc")])
        yield
    finally:
        unmount_below(tree)
        policy.unlink(missing_ok=True)


def _clean_tree(tree: Path) -> None:
    """No package lists (the first deploy runs apt-get update), no host keys, no machine identity:
    each VM makes its own at first boot."""
    for entry in (tree / "var/lib/apt/lists").iterdir():
        if entry.is_file():
            entry.unlink()
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for name in ("etc/hostname", "etc/machine-id", "etc/resolv.conf"):
        (tree / name).write_text("")
    # dbus's copy of the machine ID would become every VM's machine ID (and DHCP client ID) at first boot.
    dbus_id = tree / "var/lib/dbus/machine-id"
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")


def _copy_boot_files(tree: Path, work: Path) -> None:
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    initrds = sorted((tree / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise LabError("the box build failed (find the kernel): no vmlinuz-*/initrd.img-* in the tree's /boot")
    shutil.copyfile(kernels[-1], work / "vmlinuz")
    shutil.copyfile(initrds[-1], work / "initrd.img")


def _unpack_kernel(box: Path) -> Path:
    """The box's kernel, beside the box file (for the KVM probe)."""
    kernel = box.with_suffix(".vmlinuz")
    if not kernel.exists():
        tmp = kernel.with_name(kernel.name + ".tmp")
        run(["sh", "-c", 'tar -xOf "$0" vmlinuz > "$1"', str(box), str(tmp)])
        tmp.rename(kernel)
    return kernel


def _remove(path: Path) -> None:
    if path.is_dir():
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --- Vagrant's copy ---------------------------------------------------------------------------------

def add(box: Box, env: dict[str, str], log) -> bool:
    """`vagrant box add` the box under layout.BOX unless Vagrant already has this very build.
    Returns True when it was (re)added."""
    home = Path(env["VAGRANT_HOME"])
    record = home / "provision-box.digest"
    listed = subprocess.run([vagrant.binary(), "box", "list"], env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL).stdout
    present = any(line.split()[:1] == [layout.BOX] for line in listed.splitlines())
    if present and record.exists() and record.read_text().strip() == box.digest:
        return False
    log(f"vagrant box add --name {layout.BOX} {box.path.name}")
    code, output = vagrant.run_echoed([vagrant.binary(), "box", "add", "--force", "--name", layout.BOX,
                                       str(box.path)], log=lambda line: None, env=env)
    if code != 0:
        raise LabError(f"`vagrant box add` failed: {vagrant.error_line(output)}")
    record.write_text(box.digest + "\n")
    return True
