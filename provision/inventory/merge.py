"""Each host's variables, merged in Ansible's order (its default VARIABLE_PRECEDENCE):
the inventory's `all` vars; the inventory's vars of the host's other groups, sorted by depth,
then `ansible_group_priority`, then name; group_vars/all files; group_vars/ files of those groups
(source by source); the host's inventory vars; host_vars/ files. Every value keeps the file
that set it, so an error can name it.
"""
from __future__ import annotations

from pathlib import Path

from .graph import InventoryData
from .sources import VarsFiles


def sorted_groups(data: InventoryData, host: str) -> list[str]:
    """The host's groups but `all`, in merge order; hosts in the same groups share one sort."""
    direct = tuple(data.hosts[host].groups)
    cache = data.merge_order
    if direct not in cache:
        names = data.host_groups(host) - {"all"}
        cache[direct] = sorted(names, key=lambda g: (data.groups[g].depth, data.groups[g].priority, g))
    return cache[direct]


def host_vars(data: InventoryData, host: str, bases: list[Path], files: VarsFiles) -> tuple[dict, dict]:
    merged: dict = {}
    origins: dict = {}

    def own(vars_: dict, where: dict):
        merged.update(vars_)
        origins.update(where)

    def from_files(found):
        for path, vars_ in found:
            merged.update(vars_)
            origins.update(dict.fromkeys(vars_, str(path)))

    groups = sorted_groups(data, host)
    everyone = data.groups["all"]
    own(everyone.vars, everyone.origins)
    for g in groups:
        own(data.groups[g].vars, data.groups[g].origins)
    for base in bases:
        from_files(files.find(base, "group_vars", "all"))
    for base in bases:
        for g in groups:
            from_files(files.find(base, "group_vars", g))
    entry = data.hosts[host]
    own(entry.vars, entry.origins)
    for base in bases:
        from_files(files.find(base, "host_vars", host))
    return merged, origins
