"""Wheels for an app of the user's own, for one target's Python and architecture, made on the
control machine so that the host installs offline (pip --no-index).

The app itself: a `project` folder is built into its wheel (`pip wheel`, isolated, in a copy of
the folder, with a fixed SOURCE_DATE_EPOCH so that the same source gives the same wheel); a
`package` is downloaded. Its dependencies: `pip download` of binary wheels for the target's
Python (as the demo's wheelhouse does). A dependency with only a source distribution is built
into a wheel here, and kept only if that wheel is pure Python (py3-none-any); otherwise it is
refused in one line naming it, its version and the target's Python.

pip evaluates environment markers against the control machine's own Python, so a dependency that
only the target's Python needs (importlib-metadata for Flask on 3.9) would be missed: every
wheel's Requires-Dist is evaluated again for the target (packaging.markers), and pip runs again
with whatever was missing, until nothing is. With `requirements:`, exactly the listed versions
are downloaded (no resolution), and a dependency missing from the list is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from .inventory.apps import source_path
from .wheels import WheelError, cache_root, installer_for, key_lock, pins_for, platform_tags

SKIPPED = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "build", "dist", ".tox", ".nox",
           ".pytest_cache", ".mypy_cache", "instance", "node_modules"}
EPOCH = "315532800"         # 1980-01-01: zip's earliest date, for reproducible wheels
ROUNDS = 8                  # pip runs at most, adding marker dependencies or built sdists


@dataclass(frozen=True)
class AppWheels:
    """The wheels an app of your own is built from, for one target Python and machine."""
    key: str                        # the upload folder's name on the host
    files: tuple[Path, ...]         # every wheel, the installer's included
    digests: tuple[str, ...]        # sha256 of each file, in the order of files
    installer: Path                 # pip's wheel, run from the file itself
    pins: tuple[str, ...]           # NAME==VERSION of every wheel but pip's: what the venv gets


def app_cache() -> Path:
    return cache_root().parent / "app-wheels"


def folder_digest(folder: Path) -> str:
    """sha256 over a project folder's files (paths and bytes), build leftovers skipped."""
    h = hashlib.sha256()
    for path in sorted(_source_files(folder)):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _source_files(folder: Path):
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED and not d.endswith(".egg-info"))
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                yield Path(root) / name


def target_environment(python: tuple[int, ...], arch: str) -> dict:
    """Marker variables of a Linux CPython target (PEP 508), not of this machine."""
    version = ".".join(str(n) for n in python[:3])
    return {**default_environment(), "python_version": f"{python[0]}.{python[1]}", "python_full_version": version,
            "implementation_name": "cpython", "implementation_version": version,
            "platform_python_implementation": "CPython", "platform_machine": arch, "platform_system": "Linux",
            "sys_platform": "linux", "os_name": "posix"}


def is_pure(wheel_name: str) -> bool:
    _, _, _, tags = parse_wheel_filename(wheel_name)
    return all(t.abi == "none" and t.platform == "any" and t.interpreter.startswith("py") for t in tags)


def wheel_requires(path: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return Parser().parsestr(z.read(meta).decode("utf-8", "replace")).get_all("Requires-Dist") or []


def missing_for_target(wheels: list[Path], wanted: list[str], env: dict) -> list[str]:
    """Requirements the target needs (markers evaluated for it) that no wheel here satisfies."""
    have = {}
    for w in wheels:
        name, version, _, _ = parse_wheel_filename(w.name)
        have[canonicalize_name(name)] = version
    extras: dict[str, set[str]] = {}
    for text in wanted:
        req = Requirement(text)
        extras.setdefault(canonicalize_name(req.name), set()).update(req.extras)
    missing = []
    for w in wheels:
        name = canonicalize_name(parse_wheel_filename(w.name)[0])
        for text in wheel_requires(w):
            req = Requirement(text)
            asked = extras.get(name, set()) | {""}
            if req.marker is not None and not any(req.marker.evaluate({**env, "extra": e}) for e in asked):
                continue
            found = have.get(canonicalize_name(req.name))
            if found is None or (req.specifier and not req.specifier.contains(found, prereleases=True)):
                missing.append(f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}"
                               f"{req.specifier}")
    return sorted(set(missing))


def _pip(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args, "-q", "--disable-pip-version-check"],
                          capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH})


def _last(proc) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("WARNING")]
    return (lines or ["pip failed"])[-1].removeprefix("ERROR: ")


def _target_args(python, arch) -> list[str]:
    args = ["--implementation", "cp", "--python-version", ".".join(str(n) for n in python[:3])]
    for tag in platform_tags(arch):
        args += ["--platform", tag]
    return args


def build_project(folder: Path) -> Path:
    """The project's wheel, built once per content (cached by the folder's digest)."""
    out = app_cache() / "projects" / folder_digest(folder)[:16]
    with key_lock(str(out)):
        done = sorted(out.glob("*.whl"))
        if done:
            return done[0]
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "src"
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(*SKIPPED, "*.egg-info", "*.pyc"))
            built = Path(tmp) / "out"
            proc = _pip(["wheel", "--no-deps", "-w", str(built), str(copy)])
            wheels = sorted(built.glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                raise WheelError(f"project {folder}: pip wheel failed: {_last(proc)}")
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(wheels[0], out / wheels[0].name)
            return out / wheels[0].name


def _pure_from_sdist(requirement: str, python, arch, links: Path) -> None:
    """Build the sdist of a requirement that has no wheel for the target into ``links``, if it
    is pure Python; else refuse, naming the package, its version and the target's Python."""
    target = f"Python {python[0]}.{python[1]} ({arch})"
    req = Requirement(requirement)
    with tempfile.TemporaryDirectory() as tmp:
        got = _pip(["download", "--no-deps", "--no-binary=:all:", *_target_args(python, arch), "-d", tmp, requirement])
        sdists = [p for p in Path(tmp).iterdir() if p.is_file()]
        if got.returncode != 0 or not sdists:
            raise WheelError(f"{req.name} {req.specifier or ''}: no wheel for {target} and no source distribution"
                             .replace("  ", " "))
        version = re.sub(r"\.(tar\.gz|zip|tar\.bz2)$", "", sdists[0].name).rpartition("-")[2]
        built = Path(tmp) / "built"
        made = _pip(["wheel", "--no-deps", "-w", str(built), str(sdists[0])])
        wheels = sorted(built.glob("*.whl")) if built.exists() else []
        if made.returncode != 0 or not wheels:
            raise WheelError(f"{req.name} {version}: no wheel for {target}, and its source distribution does "
                             f"not build here: {_last(made)}")
        if not is_pure(wheels[0].name):
            raise WheelError(f"{req.name} {version}: no wheel for {target}, and its source distribution is not "
                             f"pure Python (it builds {wheels[0].name})")
        links.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheels[0], links / wheels[0].name)


NOT_FOUND = re.compile(r"No matching distribution found for (\S+)")


def _download(dest: Path, requirements: list[str], python, arch, links: Path, exact: list[str] | None) -> None:
    """pip download into ``dest``: resolve ``requirements`` (or with ``exact``, exactly those pins,
    no dependencies), building pure sdists into ``links`` and adding marker dependencies."""
    env = target_environment(python, arch)
    wanted = list(requirements)
    for _ in range(ROUNDS):
        if dest.exists():
            shutil.rmtree(dest)
        base = ["download", "--only-binary=:all:", *_target_args(python, arch), "-d", str(dest),
                "--find-links", str(links)]
        proc = _pip(base + (["--no-deps"] if exact is not None else []) + wanted + (exact or []))
        if proc.returncode != 0:
            m = NOT_FOUND.search(proc.stderr)
            if not m:
                raise WheelError(f"wheels for Python {python[0]}.{python[1]} {arch}: {_last(proc)}")
            _pure_from_sdist(m.group(1), python, arch, links)
            continue
        missing = missing_for_target(sorted(dest.glob("*.whl")), wanted + (exact or []), env)
        if not missing:
            return
        if exact is not None:
            raise WheelError(f"requirements: {missing[0]} is needed on Python {python[0]}.{python[1]} but not "
                             "listed (a requirements file must list every dependency)")
        wanted += [m for m in missing if m not in wanted]
    raise WheelError(f"wheels for Python {python[0]}.{python[1]} {arch}: no stable set after {ROUNDS} pip runs")


def requirements_lines(path: Path) -> list[str]:
    """A requirements/lock file's requirement lines (comments, hashes and options dropped)."""
    found = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].split("--hash", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            found.append(str(Requirement(line)))
        except InvalidRequirement:
            raise WheelError(f"{path}: not a requirement: {line!r}") from None
    return found


def app_wheels(app: dict, origin: str | None, python: tuple[int, ...], arch: str) -> AppWheels:
    """Every wheel an app's release needs on a target with this Python and architecture."""
    links = app_cache() / "built"           # app and pure-sdist wheels, offered to pip as find-links
    if "project" in app:
        wheel = build_project(source_path(origin, app["project"]))
        links.mkdir(parents=True, exist_ok=True)
        if not (links / wheel.name).exists() or (links / wheel.name).read_bytes() != wheel.read_bytes():
            shutil.copy2(wheel, links / wheel.name)
        name, version, _, _ = parse_wheel_filename(wheel.name)
        top = f"{name}=={version}"
        source = hashlib.sha256(wheel.read_bytes()).hexdigest()
    else:
        top, source = app["package"], ""
    gunicorn = next(p for p in pins_for(python) if p.startswith("gunicorn=="))
    exact = requirements_lines(source_path(origin, app["requirements"])) if "requirements" in app else None
    wanted = [top] + ([gunicorn] if not exact or not any(
        canonicalize_name(Requirement(r).name) == "gunicorn" for r in exact) else [])
    installer = installer_for(python)
    digest = hashlib.sha256(json.dumps([wanted, exact, source, installer, list(python[:3]), arch]).encode()).hexdigest()
    key = f"app-py{python[0]}{python[1]}-{arch}-{digest[:12]}"
    folder = app_cache() / "sets" / key
    with key_lock(key):
        if not (folder / ".complete").exists():
            _download(folder, wanted, python, arch, links, exact)
            proc = _pip(["download", "--only-binary=:all:", "--no-deps", *_target_args(python, arch), "-d",
                         str(folder), installer])
            if proc.returncode != 0:
                raise WheelError(f"pip for Python {python[0]}.{python[1]} {arch}: {_last(proc)}")
            (folder / ".complete").write_text("\n".join(wanted) + "\n")
    files = tuple(sorted(folder.glob("*.whl")))
    pip_version = installer.split("==")[1]
    pip_wheel = next(f for f in files if f.name.startswith(f"pip-{pip_version}-"))
    pins = tuple(f"{parse_wheel_filename(f.name)[0]}=={parse_wheel_filename(f.name)[1]}"
                 for f in files if f != pip_wheel)
    digests = tuple(hashlib.sha256(f.read_bytes()).hexdigest() for f in files)
    return AppWheels(key=key, files=files, digests=digests, installer=pip_wheel, pins=pins)
