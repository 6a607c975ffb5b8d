"""The drain record: which members stay drained over every reload.

balancer-manager's changes live in shared memory, which a graceful reload makes anew from the
config (BalancerPersist would keep old member settings over a changed config too). So a drain is
also recorded in the config: each BalancerMember's status comes from a variable that the routes
file defines as -N, and a drain redefines it as +N in RECORD (next to the routes file, root-only),
which the routes file includes. Every reload, by a deploy or anyone else, then starts with the
member drained. The deploy never writes RECORD, so a drain changes nothing a deploy plans.
CentOS 7's 2.4.6 has each piece: Define NAME VALUE and ${NAME} (core, 2.4.0 on), IncludeOptional
(2.3.6 on), and BalancerMember status=+N/-N (mod_proxy.c set_worker_param -> proxy_util.c
ap_proxy_set_wstatus, whose flag table holds PROXY_WORKER_DRAIN 'N' at 2.4.6); measured on
Debian 12's 2.4.6x in the lab.
"""
from __future__ import annotations

import posixpath
import re
import shlex

from ..facts import every_platform
from .manager import address_of


RECORD = "drained.conf"
RECORD_HEADER = "# Written by provision drain/undrain: members kept drained over reloads. Root-only."


def status_variable(url: str) -> str:
    """The config variable holding a member's drain status (${...}: letters, digits, _)."""
    return "provision_drain_" + re.sub(r"[^A-Za-z0-9]", "_", address_of(url))


def include_pattern(platform) -> str:
    """What the routes file includes: a wildcard, so that IncludeOptional skips it silently while
    no drain was ever recorded (the temp files, RECORD.XXXXXX, never match)."""
    return f"{posixpath.dirname(platform.routes_path)}/{RECORD.replace('.conf', '*.conf')}"


def record_script(urls: list[str], drain: bool) -> str:
    """Shell: add (drain) or remove (undrain) the members' +N lines in RECORD, in the first
    routes folder of the platforms that exists (temp file, then rename)."""
    folders = sorted({posixpath.dirname(p.routes_path) for p in every_platform()})
    lines = [f"Define {status_variable(u)} +N" for u in urls]
    others = " ".join(f"-e {shlex.quote(f'Define {status_variable(u)} ')}" for u in urls)
    out = [
        "rec=",
        f"for d in {' '.join(shlex.quote(f) for f in folders)}; do "
        f"[ -d \"$d\" ] && {{ rec=\"$d/{RECORD}\"; break; }}; done",
        '[ -n "$rec" ] || { echo "no provision routes folder on this proxy: deploy it first" >&2; exit 1; }',
        f"keep=$(grep '^Define ' \"$rec\" 2>/dev/null | grep -v -F {others} || true)",
        'tmp=$(umask 077; mktemp "$rec.XXXXXX")',
        f"{{ echo {shlex.quote(RECORD_HEADER)}; {{ printf '%s\\n' \"$keep\"; "
        + (f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)}; " if drain else "")
        + "} | grep . | sort -u; } > \"$tmp\"",
        'chmod 600 "$tmp" && mv -f "$tmp" "$rec"',
    ]
    return "\n".join(out) + "\n"
