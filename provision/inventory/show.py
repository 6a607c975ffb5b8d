"""`invoke inventory`: what we loaded, printed as `ansible-inventory` prints it: the group tree
(--graph), one host's merged variables (--host), or everything as Ansible's JSON (--list).
Secrets are masked."""
from __future__ import annotations

import json
import re

from . import Loaded, read
from .errors import InventoryError
from . import apps
from .validate import SECRET_VARS

MASK = "********"
MAX_LINES = 200_000
SECRET_NAME = re.compile(r"(^|_)(pass|password|passwd|secret|token)(_|$)")


def masked(variables: dict) -> dict:
    return {k: MASK if k in SECRET_VARS or SECRET_NAME.search(k) else apps.masked(v, MASK) if k == "apps" else v
            for k, v in variables.items()}


def _dump(value) -> str:
    try:
        return json.dumps(value, sort_keys=True, indent=4, default=str, ensure_ascii=False)
    except RecursionError:
        raise InventoryError("a variable is nested too deeply to print") from None


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
    return _dump(masked(loaded.vars[name]))


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
    return _dump(out)


def main(sources, show_graph: bool = False, host_name: str | None = None, show_list: bool = False) -> str:
    loaded = read(sources)
    if host_name:
        return host(loaded, host_name)
    if show_list:
        return listing(loaded)
    return graph(loaded)
