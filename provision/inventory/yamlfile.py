"""Ansible's YAML (and same-shaped JSON) inventory: every top-level key is a group with
`hosts:`, `children:`, `vars:`; `hosts:` may be null; host keys may be ranges or `name:port`.

A group body reached again through a YAML alias is read once: re-reading it adds nothing,
and it is what makes aliased `children` bodies exponential.
"""
from __future__ import annotations

from . import ranges
from .errors import InventoryError
from .graph import InventoryData

SECTIONS = ("vars", "children", "hosts")
MAX_DEPTH = 200


def looks_like(tree) -> bool:
    return isinstance(tree, dict) and "plugin" not in tree


def parse(data: InventoryData, path, tree):
    where = str(path)
    if not tree:
        raise InventoryError(f"{where}: the inventory is empty")
    if not isinstance(tree, dict):
        raise InventoryError(f"{where}: top level must be a mapping of groups, got {type(tree).__name__}")
    if "plugin" in tree:
        raise InventoryError(f"{where}: inventory plugin configuration (plugin: {tree['plugin']!r}) is not "
                             "supported; give the hosts as INI, YAML, JSON or a script")
    done: set = set()
    for name, body in tree.items():
        _group(data, where, name, body, done, 0)


def _group(data: InventoryData, where: str, name, body, done: set, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise InventoryError(f"{where}: group {name!r}: children nested more than {MAX_DEPTH} levels deep")
    if body is not None and not isinstance(body, dict):
        raise InventoryError(f"{where}: group {name!r}: must be a mapping with hosts, children or vars, "
                             f"got {type(body).__name__}")
    name = data.add_group(name, where)
    if body is None or (name, id(body)) in done:
        return name
    done.add((name, id(body)))
    for key in body:
        if key not in SECTIONS:
            raise InventoryError(f"{where}: group {name!r}: unknown key {key!r} (expected hosts, children or vars)")
    for key, value in body.items():
        if isinstance(value, str):
            value = {value: None}
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InventoryError(f"{where}: group {name!r}: field {key!r} must be a mapping, "
                                 f"got {type(value).__name__}")
        if key == "vars":
            for var, v in value.items():
                data.set_group_var(name, var, v, where)
        elif key == "children":
            for child, child_body in value.items():
                child = _group(data, where, child, child_body, done, depth + 1)
                data.add_child(name, child, where)
        else:
            for pattern, host_vars in value.items():
                _hosts(data, where, name, pattern, host_vars)
    return name


def _hosts(data: InventoryData, where: str, group: str, pattern, host_vars):
    host_vars = host_vars or {}
    if not isinstance(host_vars, dict):
        raise InventoryError(f"{where}: host {pattern!r}: must be a mapping of variables, "
                             f"got {type(host_vars).__name__}")
    pattern, port = ranges.split_port(str(pattern))
    for name in ranges.expand(pattern, where):
        name = data.add_host(name, group, where, port)
        for key, value in host_vars.items():
            data.set_host_var(name, key, value, where)
