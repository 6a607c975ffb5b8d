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
VARIABLE_PREFIX = "provision_member_"
# Until the names were made one-to-one, every character but a letter or digit became '_', so that
# web-1.example:8080 and web.1.example:8080 shared one variable: undraining one undrained both.
LEGACY_PREFIX = "provision_drain_"


def status_variable(url: str) -> str:
    """The config variable holding a member's drain status: its address:port with every character
    but an ASCII letter or digit written as '_' and its UTF-8 bytes in hex (10.0.0.1:80 ->
    provision_member_10_2e0_2e0_2e1_3a80), one-to-one, and only letters, digits and '_'."""
    return VARIABLE_PREFIX + "".join(c if c.isascii() and c.isalnum() else "".join(f"_{b:02x}" for b in c.encode())
                                     for c in address_of(url))


def legacy_status_variable(url: str) -> str:
    """The name earlier releases gave the variable: what drained.conf records on their hosts hold."""
    return LEGACY_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", address_of(url))


def include_pattern(platform) -> str:
    """What the routes file includes: a wildcard, so that IncludeOptional skips it silently while
    no drain was ever recorded (the temp files, RECORD.XXXXXX, never match)."""
    return f"{posixpath.dirname(platform.routes_path)}/{RECORD.replace('.conf', '*.conf')}"


def record_script(urls: list[str], drain: bool) -> str:
    """Shell: add (drain) or remove (undrain) the members' +N lines in RECORD, in the first
    routes folder of the platforms that exists (temp file, then rename). An undrain removes the
    legacy names' lines too; a drain writes them as well while a routes file there still reads
    them (a proxy not deployed since the names changed)."""
    folders = sorted({posixpath.dirname(p.routes_path) for p in every_platform()})
    lines = [f"Define {status_variable(u)} +N" for u in urls]
    legacy = [f"Define {legacy_status_variable(u)} +N" for u in urls]
    others = " ".join(f"-e {shlex.quote(f'Define {name(u)} ')}" for u in urls
                      for name in (status_variable, legacy_status_variable))
    out = [
        "rec=",
        f"for d in {' '.join(shlex.quote(f) for f in folders)}; do "
        f"[ -d \"$d\" ] && {{ rec=\"$d/{RECORD}\"; break; }}; done",
        '[ -n "$rec" ] || { echo "no provision routes folder on this proxy: deploy it first" >&2; exit 1; }',
        f"keep=$(grep '^Define ' \"$rec\" 2>/dev/null | grep -v -F {others} || true)",
        f"legacy=; ! grep -qsF {shlex.quote('${' + LEGACY_PREFIX)} \"${{rec%/*}}\"/*.inc || legacy=1",
        'tmp=$(umask 077; mktemp "$rec.XXXXXX")',
        f"{{ echo {shlex.quote(RECORD_HEADER)}; {{ printf '%s\\n' \"$keep\"; "
        + (f"printf '%s\\n' {' '.join(shlex.quote(x) for x in lines)}; "
           f"[ -z \"$legacy\" ] || printf '%s\\n' {' '.join(shlex.quote(x) for x in legacy)}; " if drain else "")
        + "} | grep . | sort -u; } > \"$tmp\"",
        'chmod 600 "$tmp" && mv -f "$tmp" "$rec"',
    ]
    return "\n".join(out) + "\n"


def upgrade_script(folder: str, urls: list[str]) -> str:
    """Shell, run when a routes file in ``folder`` is written: a drain recorded under a legacy name
    (by an earlier release) is recorded under the new name too, before any reload reads the new
    routes file, so that a deploy after an upgrade keeps drained members drained. The legacy lines
    stay (unused by the new file, they keep the old one right if configtest restores it). Where a
    legacy name was shared, every member that had it stays drained, as it was."""
    pairs = sorted({(legacy_status_variable(u), status_variable(u)) for u in urls})
    if not pairs:
        return ""
    rec = shlex.quote(f"{folder}/{RECORD}")
    adds = "; ".join(f"if grep -qxF {shlex.quote(f'Define {old} +N')} {rec}; then "
                     f"echo {shlex.quote(f'Define {new} +N')}; fi" for old, new in pairs)
    return "\n".join([
        f"if grep -qs '^Define {LEGACY_PREFIX}' {rec}; then",
        f"  tmp=$(umask 077; mktemp {rec}.XXXXXX)",
        f"  {{ echo {shlex.quote(RECORD_HEADER)}; {{ grep '^Define ' {rec}; {adds}; }} | sort -u; }} > \"$tmp\"",
        f"  chmod 600 \"$tmp\" && mv -f \"$tmp\" {rec}",
        "fi",
    ])
