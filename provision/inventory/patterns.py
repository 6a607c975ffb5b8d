"""Host patterns as Ansible evaluates them (ansible-core's InventoryManager): `all`, names, group
names, `*`/`?`/`[..]` globs, `~regex`, `a:b` or `a,b` union, `&b` intersection, `!b` exclusion,
`group[0]` / `group[1:3]` subscripts, and `@file` (one pattern per line) in a limit. Pure.

Ansible's order: the plain patterns first (union, in the order given), then every `&`, then
every `!`, whatever order they were written in; a pattern of only `&`/`!` parts starts from `all`.
"""
from __future__ import annotations

import fnmatch
import ipaddress
import re
from pathlib import Path

from .errors import InventoryError
from .ranges import is_host_name, split_port

# Ansible's PATTERN_WITH_SUBSCRIPT: a pattern ending in [N], [N:M] or [N:].
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
# The ':'-separated form: runs of anything but whitespace, ':' and brackets, or whole brackets.
_COLON_PARTS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB = (".", "?", "*", "[")


def split(pattern: str) -> list[str]:
    """Ansible's split_host_pattern: commas separate; without a comma, a single host name or
    address (ranges and a port allowed) stays whole, anything else splits on ':'."""
    if "," in pattern:
        parts = pattern.split(",")
    elif _single(pattern):
        parts = [pattern]
    else:
        parts = _COLON_PARTS.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def _single(pattern: str) -> bool:
    """One host (Ansible's parse_address accepts it): a name or address with a port, an IPv6
    address, or a name with a range such as web[1:3]."""
    if split_port(pattern)[1] is not None or is_host_name(pattern):
        return True
    try:
        ipaddress.ip_address(pattern)
        return True
    except ValueError:
        return False


def ordered(parts: list[str]) -> list[str]:
    plain = [p for p in parts if p[0] not in "&!"]
    return (plain or ["all"]) + [p for p in parts if p[0] == "&"] + [p for p in parts if p[0] == "!"]


class Matcher:
    """Patterns over one inventory: ``hosts`` every host name in inventory order, ``groups`` every
    group (``all`` and ``ungrouped`` included) -> its hosts, its children's included, in order."""

    def __init__(self, hosts: list[str], groups: dict[str, list[str]]):
        self.hosts = hosts
        self.known = set(hosts)
        self.groups = groups

    def evaluate(self, parts: list[str]) -> list[str]:
        chosen: list[str] = []
        for p in ordered(parts):
            if p in self.known:
                that = [p]
            else:
                that = self.one(p)
            if p[0] == "!":
                drop = set(that)
                chosen = [h for h in chosen if h not in drop]
            elif p[0] == "&":
                keep = set(that)
                chosen = [h for h in chosen if h in keep]
            else:
                have = set(chosen)
                chosen += [h for h in dict.fromkeys(that) if h not in have]
        return chosen

    def one(self, pattern: str) -> list[str]:
        pattern = pattern[1:] if pattern[0] in "&!" else pattern
        expr, subscript = _split_subscript(pattern)
        found = self._enumerate(expr)
        if not found or subscript is None:
            return found
        start, end = subscript
        try:
            if end is None:
                return [found[start]]
            return found[start:(len(found) - 1 if end == -1 else end) + 1]
        except IndexError:
            raise InventoryError(f"pattern {pattern!r}: the subscript is past the {len(found)} hosts it "
                                 "matches") from None

    def _enumerate(self, pattern: str) -> list[str]:
        regex = _compile(pattern)
        groups = [g for g in self.groups if regex.match(g)]
        found = [h for g in groups for h in self.groups[g]]
        if not groups or pattern[0] == "~" or any(c in pattern for c in _GLOB):
            found += [h for h in self.hosts if regex.match(h)]
        return list(dict.fromkeys(found))

    def unmatched(self, parts: list[str]) -> list[str]:
        """The parts that match no host and no group (Ansible warns about them and goes on)."""
        return [p for p in parts if p.lstrip("&!") != "all" and p not in self.known
                and not self._enumerate(_split_subscript(p.lstrip("&!"))[0])]


def _split_subscript(pattern: str) -> tuple[str, tuple[int, int | None] | None]:
    if pattern[0] == "~":
        return pattern, None
    m = _SUBSCRIPT.match(pattern)
    if not m:
        return pattern, None
    expr, index, start, _, end = m.groups()
    if index:
        return expr, (int(index), None)
    return expr, (int(start), int(end) if end else -1)


def _compile(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern[1:] if pattern[0] == "~" else fnmatch.translate(pattern))
    except re.error as exc:
        raise InventoryError(f"pattern {pattern!r}: not a valid regular expression: {exc}") from None


def expand_files(parts: list[str], flag: str) -> list[str]:
    """`@FILE` parts replaced by the file's lines (a limit file: one pattern per line)."""
    out: list[str] = []
    for p in parts:
        if p[0] != "@":
            out.append(p)
            continue
        path = Path(p[1:])
        try:
            text = path.read_text()
        except IsADirectoryError:
            raise InventoryError(f"{flag} {p}: must be a file, not a folder") from None
        except OSError as exc:
            raise InventoryError(f"{flag} {p}: cannot read: {exc.strerror}") from None
        out += [line.strip() for line in text.split("\n") if line.strip()]
    return out
