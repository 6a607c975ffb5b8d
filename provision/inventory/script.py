"""Inventory scripts, and the JSON they print (also what `ansible-inventory --list` prints):
`{"group": {"hosts": [...], "vars": {...}, "children": [...]}, "_meta": {"hostvars": {...}}}`.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path

from .errors import InventoryError
from .graph import InventoryData

TIMEOUT = 60
MAX_OUTPUT = 64 * 1024 * 1024       # bytes of stdout: a script that prints forever is stopped there
STDERR_KEPT = 64 * 1024             # the end of stderr, for the error line


def is_list_json(tree) -> bool:
    """Script-output shape: `_meta`, or a group given as a list or with `hosts:` as a list."""
    if not isinstance(tree, dict):
        return False
    if "_meta" in tree:
        return True
    return any(isinstance(g, list) or isinstance(g, dict) and isinstance(g.get("hosts"), list)
               or isinstance(g, dict) and isinstance(g.get("children"), list) for g in tree.values())


def run(path: Path, *args: str) -> str:
    """The script's stdout, read with bounds: TIMEOUT s, MAX_OUTPUT bytes (the end of stderr kept)."""
    where, what = str(path), f"inventory script {' '.join(args)}"
    try:
        proc = subprocess.Popen([str(path.resolve()), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise InventoryError(f"{where}: cannot run inventory script: {exc.strerror}") from None
    problem = ""
    try:
        out, err, problem = _read_bounded(proc)
    finally:
        if problem or proc.poll() is None:      # a bound was hit: the script and whatever it started
            _stop(proc)
        proc.stdout.close()
        proc.stderr.close()
    if problem:
        raise InventoryError(f"{where}: {what} {problem}")
    if proc.returncode != 0:
        tail = " ".join(bytes(err).decode("utf-8", "replace").split())[-300:]
        raise InventoryError(f"{where}: {what} exited {proc.returncode}: {tail or '(no output on stderr)'}")
    try:
        return bytes(out).decode("utf-8")
    except UnicodeDecodeError:
        raise InventoryError(f"{where}: {what} printed text that is not UTF-8") from None


def _read_bounded(proc) -> tuple[bytearray, bytearray, str]:
    """Read both pipes until they close; (stdout, end of stderr, what bound was hit or "")."""
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + TIMEOUT
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return out, err, f"ran more than {TIMEOUT} s"
            for key, _ in sel.select(timeout=left):
                chunk = os.read(key.fd, 1024 * 1024)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                key.data.extend(chunk)
                if key.data is err and len(err) > STDERR_KEPT:
                    del err[:-STDERR_KEPT]
                if len(out) > MAX_OUTPUT:
                    return out, err, f"printed more than {MAX_OUTPUT // (1024 * 1024)} MiB: refused"
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return out, err, f"ran more than {TIMEOUT} s"
    return out, err, ""


def _stop(proc):
    """SIGKILL to the script's own process group (its session, started for it), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def parse_output(where: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        head = " ".join(text.split())[:80]
        raise InventoryError(f"{where}: inventory script output is not JSON ({exc.msg} at line {exc.lineno}): "
                             f"{head!r}") from None
    except RecursionError:
        raise InventoryError(f"{where}: inventory script output is nested too deeply") from None
    except ValueError as exc:       # an integer of more than 4,300 digits
        raise InventoryError(f"{where}: inventory script output: cannot read a number: "
                             f"{str(exc).split(';')[0]}") from None


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
