"""`invoke inventory`: what we loaded, printed as `ansible-inventory` prints it: the group tree
(--graph), one host's merged variables (--host), or everything as Ansible's JSON (--list).
Secrets are masked."""
from __future__ import annotations

import json
import re

from . import Loaded, read
from .errors import InventoryError
from .validate import SECRET_VARS

MASK = "********"
MAX_LINES = 200_000             # --graph
MAX_PRINTED = 5_000_000         # lines of --host and --list: YAML aliases can make far more of a small file
SECRET_NAME = re.compile(r"(^|_)(pass|password|passwd|secret|token)(_|$)")


def masked(variables: dict) -> dict:
    return {k: MASK if k in SECRET_VARS or SECRET_NAME.search(k) else v for k, v in variables.items()}


def _dump(value, where, what: str) -> str:
    try:
        lines = printed_lines(value, {})
        if lines > MAX_PRINTED:
            raise InventoryError(f"{where}: {what}: the output would be {lines:,} lines, over {MAX_PRINTED:,} "
                                 "(YAML aliases repeat one value many times); refused")
        return json.dumps(value, sort_keys=True, indent=4, default=str, ensure_ascii=False)
    except RecursionError:
        raise InventoryError("a variable is nested too deeply to print") from None


def printed_lines(value, seen: dict) -> int:
    """The lines json.dumps(value, indent=4) prints, counted once per object: linear in what was
    loaded, however often aliases repeat it. ``seen``: id -> count, for the objects met."""
    if not isinstance(value, (dict, list, tuple)) or not value:
        return 1
    key = id(value)
    if key not in seen:
        children = value.values() if isinstance(value, dict) else value
        seen[key] = 2 + sum(printed_lines(child, seen) for child in children)
    return seen[key]


def graph(loaded: Loaded, start: str = "all") -> str:
    """The tree from `start`: each group's child groups, then its hosts. A group under two
    parents is shown under each, as Ansible does; a tree over MAX_LINES lines is refused."""
    data = loaded.data
    if start not in data.groups:
        raise InventoryError(f"{loaded.sources[0]}: --graph: no group named {start!r}")
    lines: list[str] = []
    todo: list[tuple[bool, str, int]] = [(True, start, 0)]     # (is a group, name, depth)
    while todo:
        is_group, name, depth = todo.pop()
        if len(lines) >= MAX_LINES:
            raise InventoryError(f"{loaded.sources[0]}: --graph: the tree is over {MAX_LINES} lines "
                                 "(groups shared by many parents); use --list")
        if not is_group:
            lines.append(_line(name, depth))
            continue
        lines.append(_line(f"@{name}:", depth))
        group = data.groups[name]
        if name != "all":
            todo += [(False, h, depth + 1) for h in reversed(group.hosts)]
        todo += [(True, c, depth + 1) for c in reversed(group.children)]
    return "\n".join(lines)


def _line(text: str, depth: int) -> str:
    return "  |" * depth + "--" + text if depth else text


def host(loaded: Loaded, name: str) -> str:
    if name not in loaded.vars:
        raise InventoryError(f"{loaded.sources[0]}: --host: no host named {name!r}")
    return _dump(masked(loaded.vars[name]), loaded.sources[0], f"--host {name}")


def listing(loaded: Loaded) -> str:
    """Groups with their hosts and children (empty groups left out), and `_meta.hostvars`."""
    data = loaded.data
    out: dict = {}
    for name, group in data.groups.items():
        body: dict = {}
        if name != "all" and group.hosts:
            body["hosts"] = list(group.hosts)
        if group.children:
            body["children"] = list(group.children)
        if body:
            out[name] = body
    out["_meta"] = {"hostvars": {h: masked(v) for h, v in loaded.vars.items() if v}}
    return _dump(out, loaded.sources[0], "--list")


def main(sources, show_graph: bool = False, host_name: str | None = None, show_list: bool = False) -> str:
    loaded = read(sources)
    if host_name:
        return host(loaded, host_name)
    if show_list:
        return listing(loaded)
    return graph(loaded)
