"""Host patterns as Ansible reads them: `name:port`, `[v6::addr]:port`, and ranges
`web[01:50].example.com`, `db-[a:f]`, `[1:10:3]` with a step, several ranges in one name.
"""
from __future__ import annotations

import re
import string

from .errors import InventoryError

# Ansible refuses nothing here, but a range is a multiplication: bound it so a one-line
# pattern can never make millions of hosts.
MAX_EXPANSION = 100_000

# Ansible's patterns, checked in linear time (a regex with nested quantifiers took 0.7 s on a
# 10,000-character name): a port is what follows the last ':' and the host part is checked by
# pieces, each with a flat regex.
_RANGE = re.compile(r"\[[a-zA-Z0-9]*:[a-zA-Z0-9]+(?::[0-9]+)?\]")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_LABEL_CHARS = re.compile(r"[a-z0-9_-]+", re.I)
_IPV6ISH = re.compile(r"[0-9a-f:.\[\]]+", re.I)
_DIGITS = re.compile(r"[0-9]+")


def _port_after(text: str) -> tuple[str, int] | None:
    """(before, port) when ``text`` ends with ``:DIGITS``."""
    before, colon, port = text.rpartition(":")
    return (before, int(port)) if colon and _DIGITS.fullmatch(port) else None


def _bracketed_hostport(text: str) -> tuple[str, int] | None:
    """``[HOST]:PORT``, HOST one line: Ansible's ``\\[(.+)\\]:([0-9]+)``."""
    found = _port_after(text)
    if found and text.startswith("[") and found[0].endswith("]") and len(found[0]) > 2 \
            and "\n" not in found[0]:
        return found[0][1:-1], found[1]
    return None


def _hostport(text: str) -> tuple[str, int] | None:
    """``HOST:PORT``, with ':' in HOST only inside brackets: Ansible's
    ``((?:[^:\\[\\]]|\\[[^\\]]*\\])*):([0-9]+)``."""
    found = _port_after(text)
    if found and not set(_BRACKETS.sub("", found[0])) & set(":[]"):
        return found
    return None


def _hostname(text: str) -> bool:
    """Labels of letters, digits, '_', '-' and ranges, split by dots (a final dot allowed)."""
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    return all(label and _LABEL_CHARS.fullmatch(_RANGE.sub("x", label)) for label in labels)


def split_port(pattern: str) -> tuple[str, int | None]:
    """(host pattern, port) as Ansible's parse_address: a trailing :NN is a port only when the
    rest is a valid host name or address; otherwise the whole text is the name."""
    port = None
    host = pattern
    for parse in (_bracketed_hostport, _hostport):
        found = parse(host)
        if found:
            host, port = found
    if _hostname(host) or (":" in host and _IPV6ISH.fullmatch(host)):
        return host, port
    return pattern, None


def is_host_name(text: str) -> bool:
    """A host name, ranges allowed (`web[1:3]`), no port."""
    return _hostname(text)


def expand(pattern: str, where: str) -> list[str]:
    """Every name a pattern stands for (one name when it has no range)."""
    if "[" not in pattern:
        return [pattern]
    _check_size(pattern, where)
    out: list[str] = []
    todo = [pattern]
    while todo:
        line = todo.pop()
        if "[" not in line:
            out.append(line)
            if len(out) > MAX_EXPANSION:
                raise InventoryError(f"{where}: host range {pattern!r} makes more than {MAX_EXPANSION} hosts")
            continue
        try:
            head, inner, tail = line.replace("[", "|", 1).replace("]", "|", 1).split("|")
        except ValueError:
            raise InventoryError(f"{where}: host range {pattern!r}: unbalanced '[' ']'") from None
        todo.extend(reversed([head + part + tail for part in _sequence(inner, pattern, where)]))
        if len(todo) > MAX_EXPANSION:
            raise InventoryError(f"{where}: host range {pattern!r} makes more than {MAX_EXPANSION} hosts")
    return out


def _check_size(pattern: str, where: str):
    """Refuse a pattern whose ranges multiply past MAX_EXPANSION before making any name: 2,000
    ranges of 3 took a second to reach the bound one name at a time."""
    total = 1
    for piece in pattern.split("[")[1:]:
        inner, closed, _ = piece.partition("]")
        if not closed:
            return          # unbalanced: expand() says so
        total *= len(_sequence(inner, pattern, where))
        if total > MAX_EXPANSION:
            raise InventoryError(f"{where}: host range {pattern[:80]!r} makes more than {MAX_EXPANSION} hosts")


def _sequence(inner: str, pattern: str, where: str) -> list[str]:
    bounds = inner.split(":")
    if len(bounds) not in (2, 3):
        raise InventoryError(f"{where}: host range {pattern!r} must be [begin:end] or [begin:end:step]")
    beg, end = bounds[0] or "0", bounds[1]
    if not end:
        raise InventoryError(f"{where}: host range {pattern!r} must give an end value")
    try:
        step = int(bounds[2]) if len(bounds) == 3 else 1
    except ValueError:
        raise InventoryError(f"{where}: host range {pattern!r}: step must be a number") from None
    if step < 1:
        raise InventoryError(f"{where}: host range {pattern!r}: step must be 1 or more")
    width = 0
    if beg[0] == "0" and len(beg) > 1:
        width = len(beg)
        if width != len(end):
            raise InventoryError(f"{where}: host range {pattern!r} must give begin and end with the same width")
    letters = string.ascii_letters
    if beg in letters and end in letters and len(beg) == len(end) == 1:
        i, j = letters.index(beg), letters.index(end)
        if i > j:
            raise InventoryError(f"{where}: host range {pattern!r} must have begin <= end")
        return list(letters[i:j + 1:step])
    try:
        first, last = int(beg), int(end)
    except ValueError:
        raise InventoryError(f"{where}: host range {pattern!r}: bounds must be numbers or single letters") from None
    if (last - first) // step > MAX_EXPANSION:
        raise InventoryError(f"{where}: host range {pattern!r} makes more than {MAX_EXPANSION} hosts")
    return [str(n).zfill(width) for n in range(first, last + 1, step)]
