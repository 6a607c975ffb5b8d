"""Host lifecycle: one overlayfs and one `systemd-nspawn --boot` per host.

Each host lives in <cache>/hosts/NAME: `upper` and `work` (its own layer),
`root` (the overlay mount), `pid` (the nspawn PID) and `nspawn.log`.
"""
from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from . import layout, network
from .system import LabError, alive, read_pid, rmdir_tree, run, spawn, terminate, unmount_below

CGROUP_NAME = "provision-lab"
CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
PROPAGATE = Path("/run/systemd/nspawn/propagate")
HOST_KEY = "etc/ssh/ssh_host_ed25519_key"
SUITE_FILE = "suite"  # in the host's folder: the Debian release its layer sits on


def folder(cache: Path, name: str) -> Path:
    return cache / "hosts" / name


def known(cache: Path) -> list[str]:
    """Names of every host with a folder in the cache (running or not)."""
    top = cache / "hosts"
    names = [p.name for p in top.iterdir() if p.is_dir()] if top.is_dir() else []
    return sorted(names, key=lambda n: (n != "proxy", len(n), n))


def pid(cache: Path, name: str) -> int | None:
    """The host's nspawn PID if it still runs."""
    found = read_pid(folder(cache, name) / "pid")
    return found if alive(found, f"--machine={name} ") else None


def cgroups(name: str) -> list[Path]:
    return [r / CGROUP_NAME / name for r in CGROUP_ROOTS if r.is_dir()]


def cgroup_parents() -> list[Path]:
    return [r / CGROUP_NAME for r in CGROUP_ROOTS if r.is_dir()]


def cgroup_pids(group: Path) -> list[int]:
    """PIDs in a cgroup folder and all below it."""
    if not group.is_dir():
        return []
    found = []
    for procs in group.rglob("cgroup.procs"):
        try:
            found += [int(x) for x in procs.read_text().split()]
        except OSError:
            pass
    return found


def clean(cache: Path, name: str) -> None:
    """Remove what a dead host leaves behind: mount, cgroups, propagate dir, veth."""
    top = folder(cache, name)
    leftovers = [p for g in cgroups(name) for p in cgroup_pids(g)]
    if leftovers:  # the container outlived its killed nspawn: end it by PID
        terminate(sorted(set(leftovers)), timeout=0)
    unmount_below(top / "root")
    for group in cgroups(name):
        rmdir_tree(group)
    shutil.rmtree(PROPAGATE / name, ignore_errors=True)
    network.remove_link(network.host_link(name))
    (top / "pid").unlink(missing_ok=True)


def fresh_layer(cache: Path, base: Path, host: layout.Host, lab_key: str) -> str:
    """Give the host a new, empty upper layer with its own files and host key.

    Returns the host's public key line.
    """
    top = folder(cache, host.name)
    for sub in ("upper", "work"):
        shutil.rmtree(top / sub, ignore_errors=True)
        (top / sub).mkdir(parents=True)
    upper = top / "upper"
    (top / SUITE_FILE).write_text(host.suite + "\n")
    files = layout.host_files(host, secrets.token_hex(16))
    files["root/.ssh/authorized_keys"] = lab_key.strip() + "\n"
    for rel, text in files.items():
        _mkdirs_like(base, upper, Path(rel).parent)
        (upper / rel).write_text(text)
    (upper / "root/.ssh/authorized_keys").chmod(0o600)
    _mkdirs_like(base, upper, Path(HOST_KEY).parent)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host.name}",
         "-f", str(upper / HOST_KEY)])
    return host_key(cache, host.name)


def host_key(cache: Path, name: str) -> str:
    return (folder(cache, name) / "upper" / (HOST_KEY + ".pub")).read_text().strip()


def suite(cache: Path, name: str) -> str:
    """The release the host's layer was made on (a layer without the record: Debian 12, the only one then)."""
    try:
        return (folder(cache, name) / SUITE_FILE).read_text().strip() or layout.SUITE
    except OSError:
        return layout.SUITE


def has_layer(cache: Path, name: str) -> bool:
    return (folder(cache, name) / "upper" / (HOST_KEY + ".pub")).exists()


def _mkdirs_like(base: Path, upper: Path, rel: Path) -> None:
    """Create rel in upper, each level with the mode and owner it has in base."""
    path = Path()
    for part in rel.parts:
        path /= part
        target = upper / path
        if target.exists():
            continue
        target.mkdir()
        source = base / path
        if source.is_dir():
            st = source.stat()
            target.chmod(st.st_mode & 0o7777)
            shutil.chown(target, st.st_uid, st.st_gid)


def authorize(cache: Path, name: str, lab_key: str) -> None:
    """Make sure a running host accepts this checkout's key (written through its mount)."""
    keys = folder(cache, name) / "root/root/.ssh/authorized_keys"
    text = keys.read_text() if keys.exists() else ""
    if lab_key.strip() not in text.splitlines():
        with keys.open("a") as f:
            f.write(lab_key.strip() + "\n")
        keys.chmod(0o600)


def mount(cache: Path, base: Path, name: str) -> None:
    top = folder(cache, name)
    (top / "root").mkdir(exist_ok=True)
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={base},upperdir={top / 'upper'},workdir={top / 'work'}", str(top / "root")])


def start(cache: Path, name: str) -> int:
    """Boot the host in the background, in cgroups of its own: on a machine whose PID 1 is not
    systemd, containers that share one cgroup kill each other's processes at shutdown
    ("Processes still around after final SIGKILL", status=219/CGROUP)."""
    top = folder(cache, name)
    groups = cgroups(name)
    for group in groups:
        rmdir_tree(group)
    setup = "".join(f'mkdir -p "{g}" && echo $$ > "{g}/cgroup.procs" || exit 97\n' for g in groups)
    argv = ["systemd-nspawn", "-D", str(top / "root"), "--boot", f"--machine={name}",
            "--register=no", "--keep-unit", f"--network-bridge={layout.BRIDGE}",
            "--resolv-conf=off", "--console=read-only", "--link-journal=no"]
    (top / "nspawn.log").write_text("")
    spawn(argv, top / "pid", top / "nspawn.log", setup=setup)
    started = read_pid(top / "pid")
    if started is None:
        raise LabError(f"{name}: systemd-nspawn did not start; see {top / 'nspawn.log'}")
    return started


def stop(cache: Path, names: list[str]) -> None:
    """Shut hosts down (SIGTERM to recorded PIDs, in parallel) and clean up after them."""
    terminate([p for p in (pid(cache, n) for n in names) if p])
    for name in names:
        clean(cache, name)


def log_tail(cache: Path, name: str, lines: int = 8) -> str:
    log = folder(cache, name) / "nspawn.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])
