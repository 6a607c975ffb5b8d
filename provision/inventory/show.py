"""`provision inventory`: what we loaded, printed as `ansible-inventory` prints it: the group tree
(--graph), one host's merged variables (--host), or everything as Ansible's JSON (--list).

--list is machine input, exactly Ansible's JSON: nothing is masked. --host is for people: it
masks the values the tool itself treats as secret by what they are for (validate.SECRET_VARS,
the become and SSH passwords; an app's secret_env values and secret files' content), never by a
substring of a name, and never a value that is not text."""
from __future__ import annotations

import json

from . import Loaded, apps, read
from .errors import InventoryError
from .validate import SECRET_VARS

MASK = "********"
MAX_LINES = 200_000             # --graph
MAX_PRINTED = 5_000_000         # lines of --host and --list: YAML aliases can make far more of a small file


def masked(variables: dict) -> dict:
    return {k: _hidden(v) if k in SECRET_VARS else apps.masked(v, MASK) if k == "apps" else v
            for k, v in variables.items()}


def _hidden(value):
    """Text becomes MASK; in a mapping or list of secrets, each text inside does; the rest shows."""
    if isinstance(value, str):
        return MASK
    if isinstance(value, dict):
        return {k: _hidden(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hidden(v) for v in value]
    return value


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
    # ansible-core 2.19 names the shape of its JSON in _meta.profile
    out["_meta"] = {"hostvars": {h: v for h, v in loaded.vars.items() if v}, "profile": "inventory_legacy"}
    return _dump(out, loaded.sources[0], "--list")


def main(sources, show_graph: bool = False, host_name: str | None = None, show_list: bool = False) -> str:
    loaded = read(sources)
    if host_name:
        return host(loaded, host_name)
    if show_list:
        return listing(loaded)
    return graph(loaded)
