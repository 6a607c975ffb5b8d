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

from . import extra as _extra, sources as _sources
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


def read(sources, extra_vars=()) -> Loaded:
    """The inventory as Ansible sees it. `sources`: one path, or a list merged in order;
    `extra_vars`: -e values (extra.parse), over every host's variables."""
    with _gc_paused():
        return _read(sources, extra_vars)


def _read(sources, extra_vars=()) -> Loaded:
    if isinstance(sources, (str, Path)):
        sources = [sources]
    sources = [Path(s) if not ("," in str(s) and not Path(s).exists()) else s for s in sources]
    if not sources:
        raise InventoryError("no inventory given (-i PATH)")
    data = InventoryData()
    bases = [_sources.read(data, s) for s in sources]
    data.finish(str(sources[0]))
    files = _sources.VarsFiles()
    extra, extra_origins = _extra.merged(extra_vars)
    merged, origins = {}, {}
    for name in data.hosts:
        merged[name], origins[name] = host_vars(data, name, bases, files)
        if extra:
            merged[name].update(extra)
            origins[name].update(extra_origins)
    return Loaded(list(map(Path, map(str, sources))), data, merged, origins)


def load(sources, extra_vars=(), errors: list | None = None) -> Inventory:
    """The inventory with every role variable checked and every host's connection fields.
    `errors`: a list to collect every host's problem in (the host is then left out) instead of
    raising the first one; a source that cannot be read at all still raises."""
    with _gc_paused():
        return _load(sources, extra_vars, errors)


def _load(sources, extra_vars=(), errors: list | None = None) -> Inventory:
    loaded = _read(sources, extra_vars)
    data = loaded.data
    first = loaded.sources[0]
    base = first if first.is_dir() else first.parent
    hosts = {}
    for name in data.hosts:
        host = _checked(errors, build_host, name, loaded.vars[name], loaded.origins[name],
                        sorted(data.host_groups(name) - {"all"}), base)
        if host is not None:
            hosts[name] = host
    groups = {g: data.members(g) for g in data.groups if g != "all"}
    if len(hosts) < len(data.hosts):       # hosts refused (errors collected) are in no group
        groups = {g: [h for h in members if h in hosts] for g, members in groups.items()}
    _check_cross_host(first, hosts, groups, errors)
    return Inventory(path=first, hosts=hosts, groups=groups, sources=loaded.sources, data=data)


def _checked(errors: list | None, check, *args):
    """check(*args); with an errors list, its InventoryError is added there (returns None)."""
    if errors is None:
        return check(*args)
    try:
        return check(*args)
    except InventoryError as exc:
        errors.append(str(exc))
        return None


class _Groups:
    """The little of an Inventory that resolving pool members needs, without refusing unusable hosts."""

    def __init__(self, hosts: dict[str, Host], groups: dict[str, list[str]]):
        self.hosts, self.groups = hosts, groups

    def group(self, name: str) -> list[Host]:
        return [self.hosts[h] for h in self.groups.get(name, [])]


def _check_cross_host(path: Path, hosts: dict[str, Host], groups: dict[str, list[str]],
                      errors: list | None = None):
    seen: dict[tuple, str] = {}
    backends = set(groups.get("backends", []))
    every = _Groups(hosts, groups)
    for h in hosts.values():
        _checked(errors, _check_host_against_others, path, h, every, backends, seen)


def _check_host_against_others(path: Path, h: Host, every: "_Groups", backends: set[str], seen: dict):
    where = h.origins.get("pools") or h.origins.get("sites") or str(path)
    sites_checked(sites.check_references, every, h, f"{where}: host {h.name!r}")
    if h.apps and h.name not in backends:
        raise InventoryError(f"{h.origins.get('apps')}: host {h.name!r}: field 'apps' is set but the host is "
                             "not in group 'backends'")
    if h.unusable:
        return
    k = (h.address, h.port or 22)
    if k in seen:
        key = next((n for n in CONNECTION_VARS["address"] if n in h.origins), "ansible_host")
        raise InventoryError(f"{h.origins.get(key, '?')}: host {h.name!r}: field {key!r}: {h.address}:{k[1]} "
                             f"is already host {seen[k]!r}")
    seen[k] = h.name
