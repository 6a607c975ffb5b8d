"""Groups, hosts and their own variables, as every source format fills them in (Ansible's
InventoryData): the implicit `all` and `ungrouped` groups, a host in any number of groups,
children forming a graph. Cycles, depths and ancestries are computed once, in linear time.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from .errors import InventoryError

DEFAULT_PRIORITY = 1


def control_character(text: str) -> str | None:
    """The first control, format or line-separator character in `text`, if any."""
    if text.isprintable():      # none of those categories is printable: the common case, in C
        return None
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            return c
    return None


def check_plain_name(kind: str, name, where: str) -> str:
    """Group and host names find group_vars/ and host_vars/ files: they must be plain names."""
    if not isinstance(name, str):
        name = str(name)
    bad = control_character(name)
    if bad is not None:
        raise InventoryError(f"{where}: {kind} {name!r}: name contains the control character {bad!r}")
    if not name.strip() or name != name.strip():
        raise InventoryError(f"{where}: {kind} {name!r}: name is empty or has surrounding spaces")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InventoryError(f"{where}: {kind} {name!r}: must be a plain name (no '/', '\\', '.' or '..'), "
                             "since it names a file in group_vars/ or host_vars/")
    return name


@dataclass
class Group:
    """A group of the inventory: its hosts, children and variables."""
    name: str
    vars: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)     # var name -> where it was set
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    priority: int = DEFAULT_PRIORITY
    depth: int = 0


@dataclass
class HostEntry:
    """A host as one source of the inventory names it, with its variables."""
    name: str
    vars: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # direct groups, in the order seen
    where: str = ""


class InventoryData:
    """What the sources declared. `finish()` adds Ansible's implicit rules and checks for cycles."""

    def __init__(self):
        self.groups: dict[str, Group] = {"all": Group("all"), "ungrouped": Group("ungrouped")}
        self.groups["all"].children.append("ungrouped")
        self.groups["ungrouped"].parents.append("all")
        self.hosts: dict[str, HostEntry] = {}
        self.ancestors: dict[str, frozenset] = {}
        self.merge_order: dict[tuple, list[str]] = {}     # direct groups -> all groups in merge order

    def add_group(self, name, where: str) -> str:
        name = check_plain_name("group", name, where)
        if name not in self.groups:
            self.groups[name] = Group(name)
        return name

    def add_host(self, name, group: str | None, where: str, port: int | None = None) -> str:
        name = check_plain_name("host", name, where)
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = HostEntry(name, where=where)
            if port:    # as Ansible: a port counts only where the host first appears
                self.set_host_var(name, "ansible_port", port, where)
        if group is not None and group not in host.groups:
            host.groups.append(group)
            self.groups[group].hosts.append(name)
        return name

    def set_group_var(self, group: str, key, value, where: str):
        key = str(key)
        g = self.groups[group]
        if key == "ansible_group_priority":
            try:
                g.priority = int(value)
            except (TypeError, ValueError):
                raise InventoryError(f"{where}: group {group!r}: field 'ansible_group_priority' must be an "
                                     f"integer, got {value!r}") from None
            return
        g.vars[key] = value
        g.origins[key] = where

    def set_host_var(self, host: str, key, value, where: str):
        key = str(key)
        h = self.hosts[host]
        h.vars[key] = value
        h.origins[key] = where

    def add_child(self, parent: str, child: str, where: str):
        if parent == child:
            raise InventoryError(f"{where}: group {child!r}: cannot be a child of itself")
        p, c = self.groups[parent], self.groups[child]
        if child not in p.children:
            p.children.append(child)
            c.parents.append(parent)

    def finish(self, where: str):
        """Ansible's reconcile: every top group under `all`, hosts without a group in `ungrouped`.
        Then depths (longest path from `all`) and ancestries, in topological order."""
        for g in list(self.groups.values()):
            if g.name != "all" and not g.parents:
                self.add_child("all", g.name, where)
        order = self._topological_order(where)
        for name in order:
            g = self.groups[name]
            ancestry: set[str] = set()
            for p in g.parents:
                ancestry.add(p)
                ancestry |= self.ancestors[p]
                g.depth = max(g.depth, self.groups[p].depth + 1)
            self.ancestors[name] = frozenset(ancestry)
        ungrouped = self.groups["ungrouped"]
        for h in self.hosts.values():
            mine = self.host_groups(h.name)
            if "ungrouped" in h.groups and mine - {"all", "ungrouped"}:
                h.groups.remove("ungrouped")
                ungrouped.hosts.remove(h.name)
            elif not mine - {"all"}:
                h.groups.append("ungrouped")
                ungrouped.hosts.append(h.name)

    def host_groups(self, host: str) -> set[str]:
        """Every group the host is in, directly or through children (Ansible's group_names + all)."""
        out: set[str] = set()
        for g in self.hosts[host].groups:
            out.add(g)
            out |= self.ancestors.get(g, frozenset())
        return out

    def _topological_order(self, where: str) -> list[str]:
        """Parents before children (Kahn's algorithm); what remains is a cycle, named in the error."""
        waiting = {name: len(g.parents) for name, g in self.groups.items()}
        ready = [name for name, n in waiting.items() if n == 0]
        order = []
        while ready:
            name = ready.pop()
            order.append(name)
            for c in self.groups[name].children:
                waiting[c] -= 1
                if waiting[c] == 0:
                    ready.append(c)
        if len(order) != len(self.groups):
            stuck = sorted(n for n, left in waiting.items() if left)
            raise InventoryError(f"{where}: groups {', '.join(map(repr, stuck[:5]))}: a cycle in 'children' "
                                 "(a group is its own ancestor)")
        return order

    def members(self, group: str) -> list[str]:
        """Hosts of the group and of its descendants, in the order they were declared."""
        seen: dict[str, None] = {}
        stack, visited = [group], set()
        while stack:
            name = stack.pop()
            if name in visited:
                continue
            visited.add(name)
            g = self.groups[name]
            for h in g.hosts:
                seen.setdefault(h)
            stack.extend(reversed(g.children))
        return list(seen)
