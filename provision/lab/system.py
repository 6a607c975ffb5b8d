"""The machine the lab runs on: checks, commands, apt packages, paths."""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError

PACKAGES = ("debootstrap", "systemd-container", "apt-cacher-ng", "zstd",
            "openssh-client", "iproute2", "util-linux", "tar")
INOTIFY = {"max_user_instances": 4096, "max_user_watches": 1048576}


class LabError(UserError):
    """A problem the user can fix; the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get("PROVISION_LAB_CACHE", "/var/cache/provision-lab"))


@contextmanager
def locked(cache: Path):
    """One lab change at a time on this machine (two checkouts may share the lab)."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def repo_root() -> Path:
    here = Path(__file__).resolve().parents[2]
    return here if (here / "setup.cfg").exists() else Path.cwd()


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a command, capture its output; a failure raises LabError with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LabError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {' / '.join(tail)}")
    return proc


def check_machine() -> None:
    if not sys.platform.startswith("linux"):
        raise LabError("the nspawn lab needs Linux; use `invoke lab.up --provider vagrant` elsewhere")
    if os.geteuid() != 0:
        raise LabError("the nspawn lab needs root: run `sudo invoke lab.up` (or as root)")


def missing_packages(names=PACKAGES) -> list[str]:
    proc = run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *names], check=False)
    ok = {line.split()[0] for line in proc.stdout.splitlines() if line.endswith(" installed")}
    return [n for n in names if n not in ok]


def ensure_packages(log, names=PACKAGES, why: str = "the lab needs") -> None:
    missing = missing_packages(names)
    if not missing:
        return
    log(f"Installing apt packages {why}: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        run(["apt-get", "update"], env=env)
        run(["apt-get", "install", "-y", "--no-install-recommends", *missing], env=env)
    except LabError as e:
        raise LabError(f"could not install {' '.join(missing)}; install them with apt-get ({e})") from None
    if shutil.which("systemd-nspawn") is None:
        raise LabError("systemd-nspawn is missing: `apt-get install systemd-container`")


def ensure_key(key: Path, log) -> str:
    """The lab's ssh key pair at `key` (made when missing); returns the public key line."""
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.parent.chmod(0o700)
        log(f"Making the lab's ssh key {key}")
        key.with_suffix(".pub").unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "provision-lab", "-f", str(key)])
    return key.with_suffix(".pub").read_text().strip()


def raise_inotify_limits() -> None:
    """Hosts from about the 18th on die with 'Too many open files' at the default 128."""
    for name, wanted in INOTIFY.items():
        path = Path("/proc/sys/fs/inotify") / name
        if int(path.read_text()) < wanted:
            path.write_text(str(wanted))


def check_free_space(path: Path, need_gb: float) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free / 1e9
    if free < need_gb:
        raise LabError(f"only {free:.1f} GB free in {path}, the lab needs {need_gb} GB: "
                       "free some space or set PROVISION_LAB_CACHE to a roomier folder")


# --- processes we started, known by recorded PID ----------------------------

def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None, marker: str) -> bool:
    """True when `pid` runs and its command line contains `marker` (so a reused PID is not ours)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z" and marker in cmdline


def terminate(pids: list[int], timeout: float = 20.0) -> None:
    """SIGTERM each PID, wait for all to go, then SIGKILL the stragglers."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_exists(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _exists(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_exists(p) for p in pids):
        time.sleep(0.1)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _exists(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def spawn(argv: list[str], pidfile: Path, logfile: Path, setup: str = "") -> None:
    """Start argv detached (own session, not our child); it writes its own PID to pidfile.

    `setup` is shell run first by the same process (e.g. joining cgroups).
    """
    script = f'{setup}\necho $$ > "$PIDFILE"\nexec "$@"'
    launcher = 'setsid sh -c "$0" lab-spawn "$@" </dev/null >>"$LOGFILE" 2>&1 &'
    pidfile.unlink(missing_ok=True)
    env = dict(os.environ, PIDFILE=str(pidfile), LOGFILE=str(logfile))
    subprocess.run(["sh", "-c", launcher, script, *argv], env=env, check=True)
    deadline = time.monotonic() + 5
    while read_pid(pidfile) is None:
        if time.monotonic() > deadline:
            raise LabError(f"{argv[0]} did not start; see {logfile}")
        time.sleep(0.02)


# --- mounts -----------------------------------------------------------------

def mounts() -> list[str]:
    """Mount points from /proc/mounts (octal escapes decoded)."""
    points = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1]
        points.append(point.encode().decode("unicode_escape"))
    return points


def unmount_below(path: Path) -> None:
    """Unmount everything at or below path, deepest first."""
    prefix = str(path)
    for point in sorted((m for m in mounts() if m == prefix or m.startswith(prefix + "/")),
                        key=len, reverse=True):
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], check=False)


def rmdir_tree(path: Path) -> None:
    """Remove a cgroup folder and its children, bottom-up, with rmdir only."""
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            sub.rmdir()
        except OSError:
            pass
    try:
        path.rmdir()
    except OSError:
        pass
