"""The wheelhouse: pinned wheels for a target's Python, downloaded once on the control machine,
so that targets install their apps offline (pip --no-index)."""
from __future__ import annotations

import hashlib
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from .facts import ARCH_RE
from .platforms import APP_PINS, APP_PINS_CURRENT, INSTALLER_PIN_CURRENT, INSTALLER_PINS

from .errors import UserError

_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class WheelError(UserError):
    pass


@dataclass(frozen=True)
class Wheelhouse:
    """The wheels an app venv is built from, for one Python and machine."""
    key: str
    pins: tuple[str, ...]
    files: tuple[Path, ...]         # every wheel to upload, the installer's included
    installer: Path                 # pip's own wheel, run from the wheel file itself
    digests: tuple[str, ...]        # sha256 of each file, in the order of files

    @property
    def manifest(self) -> str:
        """What the target's venv marker holds: the pins and the exact wheel files."""
        return "".join(f"pin {p}\n" for p in self.pins) + "".join(f"wheel {f.name}\n" for f in self.files)


def pins_for(python: tuple[int, ...]) -> tuple[str, ...]:
    return APP_PINS.get(tuple(python[:2]), APP_PINS_CURRENT)


def installer_for(python: tuple[int, ...]) -> str:
    return INSTALLER_PINS.get(tuple(python[:2]), INSTALLER_PIN_CURRENT)


def cache_root() -> Path:
    return Path(os.environ.get("PROVISION_CACHE", Path.home() / ".cache" / "provision")) / "wheels"


def platform_tags(arch: str) -> list[str]:
    # glibc 2.17 (CentOS 7) is the oldest target, so manylinux2014 and older cover every family.
    return [f"manylinux_2_17_{arch}", f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]


def key_lock(key: str) -> threading.Lock:
    """One lock per cache entry: hosts planned in parallel download or build it once."""
    with _guard:
        return _locks.setdefault(key, threading.Lock())


def wheelhouse(python: tuple[int, ...], arch: str) -> Wheelhouse:
    if not ARCH_RE.fullmatch(arch):         # it names a folder under the cache: never a path
        raise WheelError(f"architecture {arch[:40]!r} is not a machine architecture")
    pins = pins_for(python)
    installer = installer_for(python)
    digest = hashlib.sha256("\n".join(pins + (installer,)).encode()).hexdigest()[:10]
    key = f"py{python[0]}{python[1]}-{arch}-{digest}"
    folder = cache_root() / key
    with key_lock(key):
        if not (folder / ".complete").exists():
            _download(folder, pins, installer, python, arch)
    files = tuple(sorted(folder.glob("*.whl")))
    pip_wheel = next(f for f in files if f.name.startswith(f"pip-{installer.split('==')[1]}-"))
    digests = tuple(hashlib.sha256(f.read_bytes()).hexdigest() for f in files)
    return Wheelhouse(key=key, pins=pins, files=files, installer=pip_wheel, digests=digests)


def _download(folder: Path, pins, installer, python, arch):
    # lazy: pip runs only when the wheelhouse lacks a file (the first run for a Python version)
    import subprocess
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
           "--only-binary=:all:", "--implementation", "cp",
           "--python-version", ".".join(str(n) for n in python[:3]), "-d", str(folder)]
    for tag in platform_tags(arch):
        cmd += ["--platform", tag]
    for extra, what in ((list(pins), []), ([installer], ["--no-deps"])):
        proc = subprocess.run(cmd + what + extra, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip download failed"])[-1]
            raise WheelError(f"wheels for Python {python[0]}.{python[1]} {arch}: {last}")
    (folder / ".complete").write_text("\n".join(pins + (installer,)) + "\n")
