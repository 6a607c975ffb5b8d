"""Ansible's INI inventory: `[group]`, `[group:vars]`, `[group:children]`, hosts before any
section in `ungrouped`, `host:port`, ranges, `key=value` parsed as Python literals as Ansible does.
"""
from __future__ import annotations

import ast
import re
import warnings

from . import ranges
from .errors import InventoryError
from .graph import InventoryData

SECTION = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?")
GROUP_NAME = re.compile(r"([^:\]\s]+)\s*(?:#.*)?")
COMMENTS = (";", "#")


# Text that cannot start a Python literal: a name (not True/False/None), a path, an address with
# letters... Skipping literal_eval for it keeps 10,000 host lines fast.
NOT_LITERAL = re.compile(r"[A-Za-z_/][^'\"\[\]{}()]*")
LITERAL_NAMES = ("True", "False", "None")
WORDS = re.compile(r"""[^ \t\r\n'"\\#]+|'[^']*'|"(?:[^"\\]|\\.)*"|\\.|[ \t\r\n]+|#.*|['"\\]""", re.S)
_literals: dict[str, object] = {}


def parse_value(text: str):
    """Python literals (numbers, True/False, quoted strings, lists, dicts) become values;
    anything else stays the text (so `yes` and `true` stay strings, as in Ansible)."""
    if NOT_LITERAL.fullmatch(text) and not text.startswith(LITERAL_NAMES):
        return text
    if text not in _literals:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                _literals[text] = _plain(ast.literal_eval(text))
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            _literals[text] = text
    return _literals[text]      # shared between hosts, as YAML aliases are: nothing mutates values


def split_words(line: str) -> list[str]:
    """shlex.split(line, comments=True), in a few regex steps: quotes, backslashes, # comments."""
    words: list[str] = []
    current: list[str] | None = None
    for piece in WORDS.findall(line):
        first = piece[0]
        if first in " \t\r\n":
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        if first == "#":
            break
        if current is None:
            current = []
        if first == "'" and len(piece) > 1:
            current.append(piece[1:-1])
        elif first == '"' and len(piece) > 1:
            current.append(re.sub(r'\\(["\\])', r"\1", piece[1:-1]))
        elif first == "\\" and len(piece) > 1:
            current.append(piece[1])
        elif first in "'\"\\":
            raise ValueError("No closing quotation" if first != "\\" else "No escaped character")
        else:
            current.append(piece)
    if current is not None:
        words.append("".join(current))
    return words


def _plain(value):
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if value is ... or isinstance(value, complex):
        return str(value) if value is not ... else "..."
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def parse(data: InventoryData, path: str, text: str):
    group, state = "ungrouped", "hosts"
    pending: dict[str, dict] = {}      # groups named before they are declared
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        line = raw.strip()
        if not line or line[0] in COMMENTS:
            continue
        m = SECTION.fullmatch(line)
        if m:
            group, state = m.group(1), m.group(2) or "hosts"
            if state not in ("hosts", "children", "vars"):
                raise InventoryError(f"{where}: section [{group}:{state}] has an unknown type {state!r} "
                                     "(hosts, children or vars)")
            if group not in data.groups and state == "vars" and group not in pending:
                pending[group] = {"line": where, "state": "vars", "parents": []}
            group = data.add_group(group, where)
            if group in pending and state != "vars":
                if pending[group]["state"] == "children":
                    _add_pending(data, group, pending, where)
                else:
                    del pending[group]
            continue
        if line.startswith("[") and line.endswith("]"):
            raise InventoryError(f"{where}: invalid section {line!r} (no spaces or ':' inside a group name)")
        if state == "hosts":
            _host_line(data, group, line, where)
        elif state == "vars":
            if "=" not in line:
                raise InventoryError(f"{where}: [{group}:vars]: expected key=value, got {line!r}")
            key, value = (part.strip() for part in line.split("=", 1))
            data.set_group_var(group, key, parse_value(value), where)
        else:
            m = GROUP_NAME.fullmatch(line)
            if not m:
                raise InventoryError(f"{where}: [{group}:children]: expected a group name, got {line!r}")
            child = m.group(1)
            if child in data.groups:
                data.add_child(group, child, where)
            elif child in pending:
                pending[child]["parents"].append(group)
            else:
                pending[child] = {"line": where, "state": "children", "parents": [group]}
    for name, decl in pending.items():
        if decl["state"] == "vars":
            raise InventoryError(f"{decl['line']}: section [{name}:vars] is for a group that is never declared")
        raise InventoryError(f"{decl['line']}: section [{decl['parents'][-1]}:children] names group {name!r}, "
                             "which is never declared")


def _add_pending(data: InventoryData, group: str, pending: dict, where: str):
    todo = [group]
    while todo:
        name = todo.pop()
        decl = pending.pop(name, None)
        if decl is None:
            continue
        for parent in decl["parents"]:
            data.add_child(parent, name, where)
            if parent in pending and pending[parent]["state"] == "children":
                todo.append(parent)


def _host_line(data: InventoryData, group: str, line: str, where: str):
    try:
        tokens = split_words(line)
    except ValueError as exc:
        raise InventoryError(f"{where}: cannot parse host line: {exc}") from None
    if not tokens:
        return
    pattern, port = ranges.split_port(tokens[0])
    if tokens[0].strip().endswith(":") and port is None:
        raise InventoryError(f"{where}: host {tokens[0]!r}: a trailing ':' must be followed by a port")
    names = ranges.expand(pattern, where)
    if "---" in (n.strip() for n in names):
        raise InventoryError(f"{where}: '---' is not a host (is this a YAML file?)")
    variables = {}
    for token in tokens[1:]:
        if "=" not in token:
            raise InventoryError(f"{where}: host {tokens[0]!r}: expected key=value, got {token!r}")
        key, value = token.split("=", 1)
        variables[key] = parse_value(value)
    for name in names:
        name = data.add_host(name, group, where, port)
        for key, value in variables.items():
            data.set_host_var(name, key, value, where)
