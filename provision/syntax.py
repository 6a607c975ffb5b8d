"""The shapes of the names, paths and addresses an inventory may hold, checked in linear time.

Each check splits its text at the separators ('.' or '/') and matches every piece with a flat
regular expression: no quantified group holds another quantifier, so no input can make the
regex engine backtrack (a nested ``(x+/?)*`` took over 20 s on a 30-character near-miss).
Addresses go through ``ipaddress``; a scoped IPv6 address (``fe80::1%eth0``) is refused, since
its zone ID may hold any character but '%' and '/' (a newline or an '@' included).
"""
from __future__ import annotations

import ipaddress
import re

MAX_NAME = 253                  # a DNS name's length (RFC 1035 2.3.4, without the final dot)
# Inventory host names, as Ansible takes them: letters, digits, '_' and '-' (not first) per label.
FIRST_LABEL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}")
LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
# DNS names that go into a certificate or a ServerName: letters, digits and inner hyphens (LDH).
LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
URL_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
FOLDER_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
DOT_SEGMENTS = (".", "..")


def host_name(text: str) -> bool:
    """An inventory host name: dot-separated labels of letters, digits, '_' and '-' (the first
    label not starting with '-'), 253 characters at most, a final dot allowed."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_NAME:
        return False
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    return bool(FIRST_LABEL.fullmatch(labels[0])) and all(LABEL.fullmatch(label) for label in labels[1:])


def dns_name(text: str, wildcard: bool = False) -> bool:
    """A DNS name of LDH labels (RFC 952/1123; an IDNA name as its A-labels, xn--...), 253
    characters at most; with ``wildcard``, its first label may be '*' (as in '*.example.test')."""
    if not isinstance(text, str) or not 0 < len(text) <= MAX_NAME:
        return False
    labels = text.split(".")
    if wildcard and labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    return all(LDH_LABEL.fullmatch(label) for label in labels)


def a_label(text: str) -> str | None:
    """``text`` with each non-ASCII label as its A-label (IDNA 2003, Python's codec: 'prøxy' ->
    'xn--prxy-hra'), or None when IDNA cannot write it."""
    if text.isascii():
        return text
    try:
        return text.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def ip_address(text) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IPv4 or IPv6 address without a zone ID, else None."""
    if not isinstance(text, str) or "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def url_path(text: str) -> bool:
    """A URL path of plain segments: '/', '/api', '/api/v1/' (no empty, '.' or '..' segment)."""
    if not isinstance(text, str) or not text.startswith("/"):
        return False
    if text == "/":
        return True
    segments = (text[1:-1] if text.endswith("/") else text[1:]).split("/")
    return all(URL_SEGMENT.fullmatch(s) and s not in DOT_SEGMENTS for s in segments)


def folder(text: str) -> bool:
    """An absolute folder path below the root: '/var/www/static' (no empty, '.' or '..' segment)."""
    if not isinstance(text, str) or not text.startswith("/") or len(text) < 2:
        return False
    return all(FOLDER_SEGMENT.fullmatch(s) and s not in DOT_SEGMENTS for s in text[1:].split("/"))


def host_port(address: str, port: int) -> str:
    """``address:port``, with an IPv6 address in brackets (RFC 3986 3.2.2), as URLs and binds want it."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
