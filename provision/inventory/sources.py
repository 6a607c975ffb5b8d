"""Which format each `-i` source is, chosen by content as Ansible does, and the group_vars/ and
host_vars/ files beside each source.

A file: executable -> inventory script; YAML or JSON mapping -> YAML inventory (or script-output
JSON); otherwise INI. A folder: every entry in name order, skipping what Ansible skips.
`a,b,c` (a comma and no such file): a host list.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from . import ini, ranges, script, yamlfile
from .errors import InventoryError
from .files import load_data, read_text
from .graph import InventoryData

# Ansible's IGNORED_ALWAYS and default INVENTORY_IGNORE_EXTS (REJECT_EXTS + .orig .cfg .retry).
IGNORED = re.compile(r"^\.|^host_vars$|^group_vars$|^vars_plugins$|"
                     r"(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$")
YAML_SUFFIXES = ("", ".yml", ".yaml", ".json")
VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")


def read(data: InventoryData, source: str | Path) -> Path:
    """Fill `data` from one `-i` source; returns the folder its group_vars/ and host_vars/ are in."""
    text = str(source)
    path = Path(text)
    if "," in text and not path.exists():
        for item in text.split(","):
            item = item.strip()
            if item:
                name, port = ranges.split_port(item)
                if name not in data.hosts:
                    data.add_host(name, "ungrouped", f"-i {text!r}", port)
        return Path.cwd()
    if path.is_dir():
        _folder(data, path)
        return path
    read_file(data, path)
    return path.parent


def _folder(data: InventoryData, folder: Path, depth: int = 0):
    if depth > 20:
        raise InventoryError(f"{folder}: inventory folders nested more than 20 deep")
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise InventoryError(f"{folder}: cannot list: {exc.strerror}") from None
    for name in names:
        if IGNORED.search(name):
            continue
        entry = folder / name
        if entry.is_dir():
            _folder(data, entry, depth + 1)
        else:
            read_file(data, entry)


def read_file(data: InventoryData, path: Path):
    if not path.exists():
        raise InventoryError(f"{path}: no such inventory file")
    if path.is_file() and os.access(path, os.X_OK):
        script.read(data, path)
        return
    text = read_text(path)
    yaml_error = None
    if path.suffix in YAML_SUFFIXES:
        try:
            tree = load_data(path, text)
        except InventoryError as exc:
            yaml_error = exc
        else:
            list_json = path.suffix == ".json" or isinstance(tree, dict) and "_meta" in tree
            if list_json and script.is_list_json(tree):
                script.parse(data, str(path), tree)
                return
            if isinstance(tree, dict):
                yamlfile.parse(data, path, tree)
                return
    try:
        ini.parse(data, str(path), text)
    except InventoryError:
        if yaml_error is not None and (path.suffix or not _looks_like_ini(text)):
            raise yaml_error from None
        raise


def _looks_like_ini(text: str) -> bool:
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            return line.startswith("[") or "=" in line or ":" not in line
    return True


class VarsFiles:
    """group_vars/NAME and host_vars/NAME beside a source, as Ansible's host_group_vars finds them:
    the first of NAME (file or folder), NAME.yml, NAME.yaml, NAME.json; a folder is read
    recursively in name order. Each file is read once."""

    def __init__(self):
        self.cache: dict[tuple, list[tuple[Path, dict]]] = {}
        self.listings: dict[tuple, frozenset] = {}

    def find(self, base: Path, kind: str, name: str) -> list[tuple[Path, dict]]:
        listing = self.listings.get((base, kind))
        if listing is None:     # one listing per folder, not a stat per host
            folder = base / kind
            listing = frozenset(os.listdir(folder)) if folder.is_dir() else frozenset()
            self.listings[(base, kind)] = listing
        if not listing:
            return []
        key = (base, kind, name)
        if key not in self.cache:
            self.cache[key] = [(p, _vars_file(p)) for p in self._find(base / kind, name, listing)]
        return self.cache[key]

    @staticmethod
    def _find(folder: Path, name: str, listing: frozenset) -> list[Path]:
        for suffix in VARS_SUFFIXES:
            if f"{name}{suffix}" in listing:
                candidate = folder / f"{name}{suffix}"
                return _walk(candidate) if candidate.is_dir() else [candidate]
        return []


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for name in sorted(os.listdir(folder)):
        if name.startswith(".") or name.endswith("~"):
            continue
        entry = folder / name
        suffix = os.path.splitext(name)[1]
        if entry.is_dir() and not suffix:
            found += _walk(entry)
        elif entry.is_file() and suffix in VARS_SUFFIXES:
            found.append(entry)
    return found


def _vars_file(path: Path) -> dict:
    data = load_data(path)
    if not data:
        return {}
    if not isinstance(data, dict):
        raise InventoryError(f"{path}: must hold a mapping of variables, got {type(data).__name__}")
    return data
