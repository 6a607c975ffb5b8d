"""Inventory scripts, and the JSON they print (also what `ansible-inventory --list` prints):
`{"group": {"hosts": [...], "vars": {...}, "children": [...]}, "_meta": {"hostvars": {...}}}`.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import InventoryError
from .graph import InventoryData

TIMEOUT = 60


def is_list_json(tree) -> bool:
    """Script-output shape: `_meta`, or a group given as a list or with `hosts:` as a list."""
    if not isinstance(tree, dict):
        return False
    if "_meta" in tree:
        return True
    return any(isinstance(g, list) or isinstance(g, dict) and isinstance(g.get("hosts"), list)
               or isinstance(g, dict) and isinstance(g.get("children"), list) for g in tree.values())


def run(path: Path, *args: str) -> str:
    # lazy: only an inventory script runs a process
    import subprocess
    where = str(path)
    try:
        done = subprocess.run([str(path.resolve()), *args], capture_output=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InventoryError(f"{where}: inventory script {' '.join(args)} ran more than {TIMEOUT} s") from None
    except OSError as exc:
        raise InventoryError(f"{where}: cannot run inventory script: {exc.strerror}") from None
    if done.returncode != 0:
        tail = " ".join(done.stderr.decode("utf-8", "replace").split())[-300:]
        raise InventoryError(f"{where}: inventory script {' '.join(args)} exited {done.returncode}: "
                             f"{tail or '(no output on stderr)'}")
    try:
        return done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise InventoryError(f"{where}: inventory script {' '.join(args)} printed text that is not UTF-8") from None


def parse_output(where: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        head = " ".join(text.split())[:80]
        raise InventoryError(f"{where}: inventory script output is not JSON ({exc.msg} at line {exc.lineno}): "
                             f"{head!r}") from None
    except RecursionError:
        raise InventoryError(f"{where}: inventory script output is nested too deeply") from None


def parse(data: InventoryData, where: str, tree, host_vars_of=None):
    """Fill `data` from list-JSON. Without `_meta.hostvars`, `host_vars_of(name)` asks per host."""
    if not isinstance(tree, dict):
        raise InventoryError(f"{where}: inventory JSON must be an object of groups, got {type(tree).__name__}")
    meta = tree.get("_meta")
    hostvars = meta.get("hostvars") if isinstance(meta, dict) else None
    if hostvars is not None and not isinstance(hostvars, dict):
        raise InventoryError(f"{where}: '_meta.hostvars' must be an object of hosts")
    seen: dict[str, None] = {}
    for gname, body in tree.items():
        if gname == "_meta":
            continue
        group = data.add_group(gname, where)
        if not isinstance(body, dict):
            body = {"hosts": body}
        elif not any(k in body for k in ("hosts", "vars", "children")):
            body = {"hosts": [group], "vars": body}
        hosts = body.get("hosts") or []
        if not isinstance(hosts, list):
            raise InventoryError(f"{where}: group {group!r}: field 'hosts' must be a list")
        for h in hosts:
            seen.setdefault(data.add_host(h, group, where))
        gvars = body.get("vars") or {}
        if not isinstance(gvars, dict):
            raise InventoryError(f"{where}: group {group!r}: field 'vars' must be an object")
        for k, v in gvars.items():
            data.set_group_var(group, k, v, where)
        children = body.get("children") or []
        if not isinstance(children, list):
            raise InventoryError(f"{where}: group {group!r}: field 'children' must be a list")
        for c in children:
            data.add_child(group, data.add_group(c, where), where)
    for name in seen:
        got = hostvars.get(name, {}) if hostvars is not None else (host_vars_of(name) if host_vars_of else {})
        if not isinstance(got, dict):
            raise InventoryError(f"{where}: host {name!r}: variables must be an object")
        for k, v in got.items():
            data.set_host_var(name, k, v, where)


def read(data: InventoryData, path: Path):
    where = str(path)
    tree = parse_output(where, run(path, "--list"))

    def host_vars_of(name):
        return parse_output(where, run(path, "--host", name))
    parse(data, where, tree, host_vars_of)
