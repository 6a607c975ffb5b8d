"""Ansible inventories, read exactly as Ansible reads them: INI, YAML, JSON, inventory scripts,
folders of these, host lists, several sources; group_vars/ and host_vars/ beside each source.
Pure: reads files (and runs inventory scripts), never connects.

`read()` gives what `ansible-inventory --list` shows (hosts, groups, merged variables);
`load()` adds the checks our roles and the SSH transport need and returns an Inventory.
Every problem raises InventoryError with one line naming the file, host and field.
"""
from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from pathlib import Path

from . import sources as _sources
from .errors import InventoryError
from .graph import InventoryData
from .merge import host_vars, sorted_groups
from .model import Host, Inventory
from ..sites import model as sites
from .validate import (CONNECTION_VARS, KNOWN_VARS, LBMETHODS, PROXY_MODES, SECRET_VARS, TLS_MODES,
                       build_host, sites_checked)

__all__ = ["load", "read", "Loaded", "InventoryError", "Host", "Inventory", "KNOWN_VARS", "CONNECTION_VARS",
           "SECRET_VARS", "PROXY_MODES", "LBMETHODS", "TLS_MODES", "sorted_groups"]


@dataclass
class Loaded:
    """Every host's merged variables (and where each came from), and the group graph."""
    sources: list[Path]
    data: InventoryData
    vars: dict[str, dict]
    origins: dict[str, dict]


@contextlib.contextmanager
def _gc_paused():
    """Loading makes a few objects per host and frees none of them: Python's cyclic garbage
    collector, run every 700 new objects over the whole growing heap, made up most of a
    10,000-host YAML load. It is paused meanwhile (reference counting still frees)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def read(sources) -> Loaded:
    """The inventory as Ansible sees it. `sources`: one path, or a list merged in order."""
    with _gc_paused():
        return _read(sources)


def _read(sources) -> Loaded:
    if isinstance(sources, (str, Path)):
        sources = [sources]
    sources = [Path(s) if not ("," in str(s) and not Path(s).exists()) else s for s in sources]
    if not sources:
        raise InventoryError("no inventory given (-i PATH)")
    data = InventoryData()
    bases = [_sources.read(data, s) for s in sources]
    data.finish(str(sources[0]))
    files = _sources.VarsFiles()
    merged, origins = {}, {}
    for name in data.hosts:
        merged[name], origins[name] = host_vars(data, name, bases, files)
    return Loaded(list(map(Path, map(str, sources))), data, merged, origins)


def load(sources) -> Inventory:
    """The inventory with every role variable checked and every host's connection fields."""
    with _gc_paused():
        return _load(sources)


def _load(sources) -> Inventory:
    loaded = _read(sources)
    data = loaded.data
    first = loaded.sources[0]
    base = first if first.is_dir() else first.parent
    hosts = {name: build_host(name, loaded.vars[name], loaded.origins[name],
                              sorted(data.host_groups(name) - {"all"}), base)
             for name in data.hosts}
    groups = {g: data.members(g) for g in data.groups if g != "all"}
    _check_cross_host(first, hosts, groups)
    return Inventory(path=first, hosts=hosts, groups=groups, sources=loaded.sources, data=data)


class _Groups:
    """The little of an Inventory that resolving pool members needs, without refusing unusable hosts."""

    def __init__(self, hosts: dict[str, Host], groups: dict[str, list[str]]):
        self.hosts, self.groups = hosts, groups

    def group(self, name: str) -> list[Host]:
        return [self.hosts[h] for h in self.groups.get(name, [])]


def _check_cross_host(path: Path, hosts: dict[str, Host], groups: dict[str, list[str]]):
    seen: dict[tuple, str] = {}
    backends = set(groups.get("backends", []))
    every = _Groups(hosts, groups)
    for h in hosts.values():
        where = h.origins.get("pools") or h.origins.get("sites") or str(path)
        sites_checked(sites.check_references, every, h, f"{where}: host {h.name!r}")
        if h.apps and h.name not in backends:
            raise InventoryError(f"{h.origins.get('apps')}: host {h.name!r}: field 'apps' is set but the host is "
                                 "not in group 'backends'")
        if h.unusable:
            continue
        k = (h.address, h.port or 22)
        if k in seen:
            key = next((n for n in CONNECTION_VARS["address"] if n in h.origins), "ansible_host")
            raise InventoryError(f"{h.origins.get(key, '?')}: host {h.name!r}: field {key!r}: {h.address}:{k[1]} "
                                 f"is already host {seen[k]!r}")
        seen[k] = h.name
